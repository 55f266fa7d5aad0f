#!/usr/bin/env bash
# Train under Slurm, one task per GPU: mmseg 0.30's tools/slurm_train.sh, arguments in the same order.
#   [GPUS=8] [GPUS_PER_NODE=4] tools/slurm_train.sh PARTITION JOB_NAME CONFIG [PY_ARGS...]
# srun starts every task; each reads SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID (--launcher slurm), and meets the
# others at the first node of SLURM_NODELIST (port MASTER_PORT, 29500 by default).

set -x

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
GPUS=${GPUS:-4}
GPUS_PER_NODE=${GPUS_PER_NODE:-4}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PY_ARGS=("${@:4}")

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
srun -p ${PARTITION} \
    --job-name=${JOB_NAME} \
    --gres=gpu:${GPUS_PER_NODE} \
    --ntasks=${GPUS} \
    --ntasks-per-node=${GPUS_PER_NODE} \
    --cpus-per-task=${CPUS_PER_TASK} \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    python -u -m segnb.train ${CONFIG} --launcher="slurm" "${PY_ARGS[@]}"
