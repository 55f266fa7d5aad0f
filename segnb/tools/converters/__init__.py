"""The dataset converters of `python -m segnb.tools.convert_dataset NAME`, one module per release (mmseg 0.30's tools/convert_datasets)."""
