"""Does data loading limit pretraining? Samples per second of the pretraining loader (decode, joint crop/flip,
resize to 224 px, depth standardisation, masks: the training view) for several worker counts, against the samples
per second one training step consumes (forward, backward, optimizer step) on the chosen device.

    python benchmarks/loader_throughput.py                                  # embedded data, multimae_nano, 224 px
    python benchmarks/loader_throughput.py --workers 0 4 8 16 model=multimae_base trainer.batch_size=128 \
        data=imagenet_s50 data.root=/data/pretrain-50                       # your data and model on a GPU node

Positional arguments are train.py overrides (the same config, so the view and the step are the training run's).
The defaults add ``model.image_size=224 model.patch_size=16`` and, for the embedded data, a 256-scene set stored at
5/4 of the input size (PNG, so real JPEG folders decode somewhat faster per pixel). When the loader's rate with the
workers you plan to use is below the step rate, data loading limits training: add workers (data.num_workers) or
CPU cores, or store smaller images.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

REPO = Path(__file__).resolve().parents[1]
DEFAULTS = ["model.image_size=224", "model.patch_size=16", "data.synthetic.num_train=256", "data.synthetic.num_val=8",
            "data.val_split=null"]


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from attent_vision.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "attent_vision" / "conf" / "train"), version_base="1.3"):
        return hydra_compose(config_name="train", overrides=DEFAULTS + overrides)


class RandomKeys:
    """Batches of (index, epoch, weight) keys in a seeded random order, as the training sampler yields them."""

    def __init__(self, num_samples: int, batch_size: int, num_batches: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        epochs = num_batches * batch_size // num_samples + 1
        order = torch.cat([torch.randperm(num_samples, generator=g) for _ in range(epochs)]).tolist()
        self.batches = [[(i, 0, 1.0) for i in order[b * batch_size : (b + 1) * batch_size]] for b in range(num_batches)]

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)


def loader_rate(view, cfg, workers: int, batch_size: int, batches: int, warmup: int, pin: bool) -> float:
    """Samples/s of a DataLoader over ``view`` after ``warmup`` batches (worker start-up is not counted)."""
    from attent_vision.data.skipping import collate_skipping_bad

    loader = DataLoader(view, batch_sampler=RandomKeys(len(view), batch_size, warmup + batches), num_workers=workers,
                        collate_fn=collate_skipping_bad, pin_memory=pin, persistent_workers=False,
                        prefetch_factor=cfg.data.prefetch_factor if workers else None)
    it = iter(loader)
    for _ in range(warmup):
        next(it)
    start, count = time.perf_counter(), 0
    for batch in it:
        count += len(batch["index"])
    return count / (time.perf_counter() - start)


def step_rate(cfg, model, batch: dict, device: torch.device, steps: int, warmup: int) -> float:
    """Samples/s of full training steps (forward, per-sample losses, backward, AdamW step) on one batch."""
    from attent_vision.pretraining.builders import build_loss
    from attent_vision.engine.optim import build_optimizer
    from attent_vision.engine.runtime import autocast, configure_backends, resolve_precision

    configure_backends(device)
    precision = resolve_precision(cfg.trainer.precision, device)
    loss_fn = build_loss(cfg, model)
    optimizer = build_optimizer(model, cfg.optim, len(batch["index"]), device)
    inputs = {k: v.to(device) for k, v in batch.items() if k in ("rgb", "depth", "semseg")}
    masks = {k: v.to(device) for k, v in batch["masks"].items()}
    model.train()

    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast(precision, device):
            preds, used_masks = model(inputs, task_masks=masks)
        loss_fn.objective(loss_fn(preds, inputs, used_masks)).mean().backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return steps * len(batch["index"]) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="train.py overrides, e.g. model=multimae_base data.root=...")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="loader worker counts to measure")
    parser.add_argument("--batches", type=int, default=10, help="timed loader batches per worker count")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=1, help="untimed batches / steps first")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--json", type=Path, help="also write the measurements to this file")
    args = parser.parse_args(argv)

    from attent_vision.data.skipping import collate_skipping_bad
    from attent_vision.pretraining.builders import build_pretrain_model, build_pretrain_views, dataset_root

    cfg = compose(args.overrides)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    torch.manual_seed(cfg.trainer.seed)
    model = build_pretrain_model(cfg).to(device)
    view = build_pretrain_views(cfg, model, dataset_root(cfg))["train"]
    batch_size = cfg.trainer.micro_batch_size or cfg.trainer.batch_size
    print(f"data: {cfg.data.name} ({len(view)} samples), {cfg.model.image_size} px, modalities "
          f"{view.folder.modalities}; model {cfg.model.name}; batch {batch_size}; device {device}; "
          f"{torch.get_num_threads()} CPU threads", flush=True)

    batch = collate_skipping_bad([view[(i % len(view), 0, 1.0)] for i in range(batch_size)])
    step = step_rate(cfg, model, batch, device, args.steps, args.warmup)
    print(f"training step: {step:8.1f} samples/s", flush=True)
    rows = []
    for workers in args.workers:
        rate = loader_rate(view, cfg, workers, batch_size, args.batches, args.warmup, pin=device.type == "cuda")
        verdict = "keeps up" if rate >= step else f"limits training to {rate / step:.0%} of the step rate"
        rows.append({"workers": workers, "loader_samples_per_s": round(rate, 1), "keeps_up": rate >= step})
        per_worker = rate / max(workers, 1)
        print(f"loader, {workers:2d} workers: {rate:8.1f} samples/s ({per_worker:6.1f} per worker) -> {verdict}", flush=True)
    result = {"step_samples_per_s": round(step, 1), "loaders": rows, "batch_size": batch_size, "device": str(device),
              "model": cfg.model.name, "image_size": cfg.model.image_size, "data": cfg.data.name}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
