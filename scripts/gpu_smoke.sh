#!/usr/bin/env bash
# GPU smoke check for whoever has a GPU (about 3-5 minutes on one modern GPU):
#   1. bf16 training-step and scoring-pass throughput of MultiMAE-B at 224 px, and peak memory;
#   2. the GPU tests (pytest -m gpu);
#   3. a real run through a 1-GPU torchrun: base model, 224 px, embedded data, soft selection with a scoring pass.
# Usage: bash scripts/gpu_smoke.sh [output dir]     (prints JSON lines and the run's summary)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-/tmp/attent-gpu-smoke}}"
mkdir -p "$out"
export ATTENT_VISION_CACHE="${ATTENT_VISION_CACHE:-$out/cache}"

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"

echo "== 1. throughput (bf16, multimae_base, 224 px)"
python scripts/gpu_throughput.py --model multimae_base --batch 64 --steps 20 --precision bf16 | tee "$out/throughput_bf16.json"
python scripts/gpu_throughput.py --model multimae_base --batch 64 --steps 20 --precision fp32 | tee "$out/throughput_fp32.json"

echo "== 2. GPU tests"
python -m pytest -m gpu -q tests/test_gpu.py 2>&1 | tail -5 | tee "$out/gpu_tests.txt"

echo "== 3. 1-GPU torchrun: base model on the embedded data, one selection cycle"
torchrun --standalone --nproc_per_node 1 train.py model=multimae_base data.synthetic.num_train=2048 \
    data.synthetic.num_val=128 data.num_workers=8 trainer.epochs=4 trainer.batch_size=128 teaching.total_cycles=1 \
    interval.initial_interval=2 interval.max_interval=2 trainer.log_every_steps=5 checkpoint.every_epochs=0 \
    trainer.eval_batch_size=256 "hydra.run.dir=$out/run" 2>&1 | grep -E "plan|device|done:|selected|epoch .* done" \
    | tee "$out/run_summary.txt"
python - "$out/run/results.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t = r["time_s"]
print(json.dumps({"status": r["status"], "val_loss_initial": r["initial"].get("val_loss"),
                  "val_loss_final": r["final"].get("val_loss"), "steps": r["optimizer_steps"],
                  "samples_seen": r["samples_seen"], "samples_scored": r["samples_scored"], "time_s": t}))
PY
