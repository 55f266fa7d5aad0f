#!/usr/bin/env bash
# Train with torchrun, one process per GPU: mmseg 0.30's tools/dist_train.sh, arguments in the same order.
#   tools/dist_train.sh CONFIG GPUS [PY_ARGS...]
# Several machines: run it on each with NNODES, NODE_RANK (0 .. NNODES-1), MASTER_ADDR (node 0's address) and PORT.
# mmseg's script calls `python -m torch.distributed.launch`, which passes --local_rank; torchrun sets LOCAL_RANK.

CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
torchrun \
    --nnodes=$NNODES \
    --node_rank=$NODE_RANK \
    --master_addr=$MASTER_ADDR \
    --nproc_per_node=$GPUS \
    --master_port=$PORT \
    -m segnb.train \
    $CONFIG \
    --launcher pytorch "${@:3}"
