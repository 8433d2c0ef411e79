#!/usr/bin/env bash
# Container entrypoint.
#   train [overrides...]      python train.py (torchrun over NPROC_PER_NODE GPUs when it is above 1)
#   finetune [overrides...]   python finetune.py (same)
#   report <multirun dir>     the Table-3 report
#   anything else             run as given (e.g. bash, python -m ...)
# NPROC_PER_NODE=auto uses every visible GPU. ATTENT_DRY_RUN=1 prints the command instead of running it.
set -euo pipefail

home="${ATTENT_VISION_HOME:-/opt/attent-vision}"
nproc="${NPROC_PER_NODE:-1}"
if [[ "$nproc" == "auto" ]]; then
    nproc=$(python -c "import torch; print(max(torch.cuda.device_count(), 1))")
fi

command=()
case "${1:-train}" in
    train|finetune)
        script="$home/$1.py"
        shift || true
        if (( nproc > 1 )); then
            command=(torchrun --standalone --nproc_per_node "$nproc" "$script" "$@")
        else
            command=(python "$script" "$@")
        fi
        ;;
    report)
        shift
        command=(attent-report "$@")
        ;;
    *)
        command=("$@")
        ;;
esac

if [[ "${ATTENT_DRY_RUN:-0}" == "1" ]]; then
    printf '%s\n' "${command[*]}"
    exit 0
fi
exec "${command[@]}"
