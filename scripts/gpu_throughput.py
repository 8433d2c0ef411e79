"""Training-step and scoring-pass throughput of a MultiMAE on one CUDA device (synthetic tensors, no data
loading), and peak memory. Prints one JSON object. Used by scripts/gpu_smoke.sh.

    python scripts/gpu_throughput.py --model multimae_base --batch 64 --steps 20 --precision bf16 [--compile]
"""

import argparse
import json
import time

import torch

from attent_vision.engine.runtime import autocast
from attent_vision.models import MultiMAELoss, create_model


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="multimae_base")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--precision", default="bf16", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--compile", action="store_true")
    args = p.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("error: no CUDA device; this script measures GPU throughput")
    device = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = True
    model = create_model(args.model, image_size=args.image_size, patch_size=16).to(device)
    loss_fn = MultiMAELoss(tasks={"rgb": "rgb", "depth": "depth", "semseg": "semseg"}, patch_size=16,
                           strides={"semseg": 4})
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    step_model = torch.compile(model) if args.compile else model
    B, S = args.batch, args.image_size
    x = {"rgb": torch.randn(B, 3, S, S, device=device), "depth": torch.randn(B, 1, S, S, device=device),
         "semseg": torch.randint(0, 133, (B, S // 4, S // 4), device=device)}
    masks = model.mask_spec.sample(B, torch.Generator().manual_seed(0))  # CPU masks, as the data loader gives them

    def train_step():
        with autocast(args.precision, device):
            preds, used = step_model(x, task_masks=masks)
        loss = loss_fn.objective(loss_fn(preds, x, used)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    @torch.no_grad()
    def score_step():
        with autocast(args.precision, device):
            preds, used = step_model(x, task_masks=masks)
        return loss_fn.objective(loss_fn(preds, x, used))

    def rate(fn, steps):
        for _ in range(3):  # warm-up (and compilation)
            fn()
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            fn()
        torch.cuda.synchronize()
        return B * steps / (time.perf_counter() - start)

    torch.cuda.reset_peak_memory_stats()
    train = rate(train_step, args.steps)
    train_mem = torch.cuda.max_memory_allocated() / 2**30
    score = rate(score_step, args.steps)
    print(json.dumps({
        "device": torch.cuda.get_device_name(), "model": args.model, "image_size": S, "batch": B,
        "precision": args.precision, "compile": args.compile, "train_samples_per_s": round(train, 1),
        "scoring_samples_per_s": round(score, 1), "scoring_to_training_cost": round(train / score, 3),
        "peak_train_memory_gib": round(train_mem, 2),
    }))


if __name__ == "__main__":
    main()
