"""Does data loading limit pretraining? Samples per second of the pretraining loader (decode, joint crop/flip,
resize to 224 px, depth standardisation, masks: the training view) for several worker counts, against the samples
per second one training step consumes (forward, backward, optimizer step) on the chosen device.

    python benchmarks/loader_throughput.py                                  # embedded data, multimae_nano, 224 px
    python benchmarks/loader_throughput.py --workers 0 4 8 16 model=multimae_base trainer.batch_size=128 \
        data=imagenet_s50 data.root=/data/pretrain-50                       # your data and model on a GPU node

    python benchmarks/loader_throughput.py --cache                          # also: data.cache=memory vs none

Positional arguments are train.py overrides (the same config, so the view and the step are the training run's).
The defaults add ``model.image_size=224 model.patch_size=16`` and, for the embedded data, a 256-scene set stored at
5/4 of the input size (PNG, so real JPEG folders decode somewhat faster per pixel). When the loader's rate with the
workers you plan to use is below the step rate, data loading limits training: add workers (data.num_workers) or
CPU cores, or store smaller images.

``--cache`` adds a side-by-side comparison of ``data.cache=none`` and ``data.cache=memory`` for each worker count:
two persistent loaders over the same keys (``--epochs`` full epochs, each sample once per epoch in a new random
order), their epochs interleaved so both see the same machine load. Epoch 1 fills the cache (and starts the
workers); the speed-up is that of epochs 2 and later. With loader workers each worker caches the samples it is
dealt, and the deal changes every epoch, so a worker's hit rate grows over the first epochs (about 1 - (1 - 1/W)^e
after e epochs with W workers).
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


class EpochKeys:
    """Batches of (index, epoch, weight) keys of one whole epoch (each sample once, in a random order seeded by the
    epoch); set ``epoch`` before iterating."""

    def __init__(self, num_samples: int, batch_size: int, seed: int = 0):
        self.num_samples, self.batch_size, self.seed, self.epoch = num_samples, batch_size, seed, 0

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.num_samples, generator=g).tolist()
        return iter([[(i, self.epoch, 1.0) for i in order[b : b + self.batch_size]]
                     for b in range(0, self.num_samples, self.batch_size)])

    def __len__(self):
        return -(-self.num_samples // self.batch_size)


def cache_comparison(views: dict, cfg, workers: int, batch_size: int, epochs: int, pin: bool) -> dict:
    """Samples/s per epoch of a loader over each of ``views`` ({'none': view, 'memory': view}), persistent workers,
    the same keys, epochs interleaved; and the speed-up of the cached loader over epochs 2 and later."""
    from attent_vision.data.skipping import collate_skipping_bad
    from attent_vision.engine.loaders import shut_down_workers

    loaders = {name: DataLoader(view, batch_sampler=EpochKeys(len(view), batch_size), num_workers=workers,
                                collate_fn=collate_skipping_bad, pin_memory=pin, persistent_workers=workers > 0,
                                prefetch_factor=cfg.data.prefetch_factor if workers else None)
               for name, view in views.items()}
    seconds = {name: [] for name in loaders}
    for epoch in range(epochs):
        for name, loader in loaders.items():
            loader.batch_sampler.epoch = epoch
            start = time.perf_counter()
            for _ in loader:
                pass
            seconds[name].append(time.perf_counter() - start)
    for loader in loaders.values():
        shut_down_workers(loader)
    n = len(views["none"])
    later = {name: (epochs - 1) * n / sum(s[1:]) for name, s in seconds.items()}
    return {"workers": workers, "epochs": epochs, "samples": n,
            "samples_per_s": {name: [round(n / t, 1) for t in s] for name, s in seconds.items()},
            "epoch2plus_samples_per_s": {name: round(r, 1) for name, r in later.items()},
            "speedup_epoch2plus": round(later["memory"] / later["none"], 2)}


def step_rate(cfg, model, batch: dict, device: torch.device, steps: int, warmup: int) -> float:
    """Samples/s of full training steps (forward, per-sample losses, backward, AdamW step) on one batch."""
    from attent_vision.engine.optim import build_optimizer
    from attent_vision.engine.runtime import autocast, configure_backends, resolve_precision
    from attent_vision.pretraining.builders import build_loss

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
    parser.add_argument("--cache", action="store_true", help="also compare data.cache=none and memory, side by side")
    parser.add_argument("--epochs", type=int, default=3, help="full epochs per loader in the --cache comparison")
    parser.add_argument("--json", type=Path, help="also write the measurements to this file")
    args = parser.parse_args(argv)
    if args.cache and args.epochs < 2:
        parser.error("--cache compares epochs 2 and later: --epochs must be at least 2")

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
        print(f"loader, {workers:2d} workers: {rate:8.1f} samples/s ({per_worker:6.1f} per worker) -> {verdict}",
              flush=True)
    result = {"step_samples_per_s": round(step, 1), "loaders": rows, "batch_size": batch_size, "device": str(device),
              "model": cfg.model.name, "image_size": cfg.model.image_size, "data": cfg.data.name}
    if args.cache:
        result["cache"] = []
        for workers in args.workers:
            # A fresh cache per worker count: forked workers would otherwise start with the last count's full one.
            cached = build_pretrain_views(compose(args.overrides + ["data.cache=memory"]), model, dataset_root(cfg))
            row = cache_comparison({"none": view, "memory": cached["train"]}, cfg, workers, batch_size, args.epochs,
                                   pin=device.type == "cuda")
            result["cache"].append(row)
            per_epoch = "  ".join(f"{name} {' / '.join(f'{r:.1f}' for r in rates)}"
                                  for name, rates in row["samples_per_s"].items())
            print(f"cache, {workers:2d} workers, {args.epochs} epochs of {row['samples']} (samples/s per epoch: "
                  f"{per_epoch}): epochs 2+ {row['speedup_epoch2plus']:.2f}x faster with data.cache=memory", flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
