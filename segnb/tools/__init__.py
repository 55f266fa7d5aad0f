"""segnb's command-line tools, under mmseg's tools/ names."""
