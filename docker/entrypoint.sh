#!/usr/bin/env bash
# Container entrypoint.
#   train [overrides...]      python -m attent_vision.train (torchrun over NPROC_PER_NODE GPUs when it is above 1)
#   finetune [overrides...]   python -m attent_vision.finetune (same)
#   report <multirun dir>     the Table-3 report
#   anything else             run as given (e.g. bash, python -m ...)
# NPROC_PER_NODE=auto uses every visible GPU. ATTENT_DRY_RUN=1 prints the command instead of running it.
set -euo pipefail

nproc="${NPROC_PER_NODE:-1}"
if [[ "$nproc" == "auto" ]]; then
    nproc=$(python -c "import torch; print(max(torch.cuda.device_count(), 1))")
fi

command=()
case "${1:-train}" in
    train|finetune)
        module="attent_vision.$1"  # the installed package holds the entry points and their configs
        shift || true
        if (( nproc > 1 )); then
            command=(torchrun --standalone --nproc_per_node "$nproc" -m "$module" "$@")
        else
            command=(python -m "$module" "$@")
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
