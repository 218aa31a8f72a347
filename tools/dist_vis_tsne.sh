#!/usr/bin/env bash
# Multi-process feature extraction with torchrun (mmengine launcher
# convention): bash tools/dist_vis_tsne.sh CONFIG NPROC [vis_tsne.py args]
# Each rank extracts its shard; rank 0 gathers them and runs t-SNE.
#
# The interpreter: $PYTHON when set, else the repository's .venv/bin/python
# (what `make venv` sets up) when it exists, else `python` from PATH. So the
# launcher works without activating the venv first.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG NPROC [vis_tsne.py arguments]" >&2
    exit 2
fi
CONFIG=$1
NPROC=$2
shift 2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
DIR=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$DIR")
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$REPO/.venv/bin/python" ]; then
        PYTHON="$REPO/.venv/bin/python"
    else
        PYTHON=python
    fi
fi
# A python without torch fails in every rank with a traceback each: say it
# once, with what to do.
if ! "$PYTHON" -c 'import torch' >/dev/null 2>&1; then
    echo "error: $PYTHON cannot import torch; run \`make venv\` in" \
         "$REPO, or set PYTHON to the python of an environment with" \
         "tsneviz's requirements" >&2
    exit 2
fi

PYTHONPATH="$REPO:${PYTHONPATH:-}" \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROC" \
    --master_port="$PORT" \
    "$DIR/vis_tsne.py" "$CONFIG" --launcher pytorch "$@"
