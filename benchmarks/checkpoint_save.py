"""What the checkpoint's integrity checks cost on the default run (``python train.py``: multimae_nano at 64 px,
AdamW): a checkpoint saved as before (without the training data's fingerprint) vs as now (with it), side by side
and interleaved, and the one-off costs (the fingerprint at start, the CRC check at load). Both write torch's CRC-32
of every record, which torch.save did by default before too (only the check at load is new); a save without any
CRC is shown for reference.

    python benchmarks/checkpoint_save.py [--repeats 20]

Prints median times and ratios. Disk saves swing with fsync and writeback; the in-memory serialisation is the
stable part of the comparison.
"""

import argparse
import io
import pickle
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.utils.serialization as serialization
from hydra import compose, initialize_config_dir

from attent_vision.conf import TRAIN_CONF_DIR
from attent_vision.config import register_configs
from attent_vision.data.fingerprint import fingerprint_samples
from attent_vision.engine.checkpoint import atomic_torch_save, training_state, verify_checksums
from attent_vision.engine.optim import build_optimizer
from attent_vision.pretraining.builders import build_pretrain_model


def default_state() -> tuple[dict, int]:
    """A checkpoint of the default run after one step (AdamW moments present), and its training-set size."""
    register_configs("pretrain")
    with initialize_config_dir(config_dir=str(TRAIN_CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train")
    model = build_pretrain_model(cfg)
    optimizer = build_optimizer(model, cfg.optim, cfg.trainer.batch_size, torch.device("cpu"))
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    optimizer.step()
    state = training_state(model=model, optimizer=optimizer, scaler=torch.amp.GradScaler("cpu", enabled=False),
                           progress={"global_step": 1}, cfg=cfg, device=torch.device("cpu"))
    return state, cfg.data.synthetic.num_train


def median_ms(times: list[float]) -> float:
    return 1e3 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    state, num_train = default_state()
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "data"
        samples = []
        for i in range(num_train):  # the default dataset's file count: rgb, depth, semseg per sample
            paths = {}
            for modality in ("rgb", "depth", "semseg"):
                paths[modality] = data / modality / f"{i:04d}.png"
                paths[modality].parent.mkdir(parents=True, exist_ok=True)
                paths[modality].write_bytes(bytes(4096))
            samples.append(paths)
        start = time.perf_counter()
        fingerprint = fingerprint_samples(samples, data).record
        fingerprint_s = time.perf_counter() - start
        now = {**state, "data_fingerprint": fingerprint}
        path = Path(folder) / "step_00000001.pt"
        before, after, memory_before, memory_after = [], [], [], []
        no_crc = []
        for obj in (state, now):  # warm-up: allocator, page cache, lazy imports of the first save
            atomic_torch_save(obj, path)
            torch.save(obj, io.BytesIO())
        for i in range(args.repeats):
            pair = [(before, state), (after, now)]
            for times, obj in pair if i % 2 else pair[::-1]:  # the second save of a pair meets the first's writeback
                start = time.perf_counter()
                atomic_torch_save(obj, path)
                times.append(time.perf_counter() - start)
            in_memory = [(memory_before, state), (memory_after, now)]
            for times, obj in in_memory if i % 2 else in_memory[::-1]:
                start = time.perf_counter()
                torch.save(obj, io.BytesIO())
                times.append(time.perf_counter() - start)
            serialization.config.save.compute_crc32 = False
            start = time.perf_counter()
            torch.save(state, io.BytesIO())
            no_crc.append(time.perf_counter() - start)
            serialization.config.save.compute_crc32 = True
        start = time.perf_counter()
        verify_checksums(path)
        verify_s = time.perf_counter() - start
        size = path.stat().st_size
    extra = len(pickle.dumps(fingerprint))
    print(f"checkpoint {size / 2**20:.2f} MiB ({extra / 1024:.1f} KiB of it the fingerprint), {args.repeats} saves "
          "each (interleaved)")
    print(f"save to disk:   before {median_ms(before):.1f} ms, now {median_ms(after):.1f} ms, "
          f"ratio {statistics.median(after) / statistics.median(before):.3f} (of the fastest: "
          f"{min(after) / min(before):.3f})")
    print(f"serialisation:  before {median_ms(memory_before):.2f} ms, now {median_ms(memory_after):.2f} ms, "
          f"ratio {statistics.median(memory_after) / statistics.median(memory_before):.4f} (of the fastest: "
          f"{min(memory_after) / min(memory_before):.4f}) "
          f"(without any CRC: {median_ms(no_crc):.2f} ms)")
    print(f"once per run: fingerprint of {fingerprint['files']} files {fingerprint_s * 1e3:.1f} ms at start; "
          f"CRC check {verify_s * 1e3:.1f} ms per checkpoint loaded")


if __name__ == "__main__":
    main()
