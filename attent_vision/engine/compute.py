"""The deterministic compute axis: a run's work in samples and FLOPs, beside its (noisy) wall time.

Wall time drifts between runs on one machine and means nothing across machines; the work a run did does not. A
stage counts its samples (trained, scored, evaluated) from state its checkpoints already hold, and measures the
FLOPs of one sample once, at set-up, with PyTorch's own counter (``torch.utils.flop_counter.FlopCounterMode``:
it counts the matrix products, convolutions and attention each aten operator performs, forward and backward,
from the shapes alone, not from a clock, so every start of a run measures the same number). The record is then
pure arithmetic (:func:`compute_record`). Model-agnostic: the stage supplies the model and a loss of one dummy
micro-batch.
"""

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
from torch.utils.flop_counter import FlopCounterMode

# The record's fields, in the order results.json lists them (readers and the report rely on the names).
COMPUTE_FIELDS = ("flops_per_trained_sample", "flops_per_scored_sample", "trained_samples", "scored_samples",
                  "reference_trained_samples", "reference_scored_samples", "eval_samples", "probe_samples",
                  "total_flops", "train_equivalents")


@dataclass(frozen=True)
class SampleFlops:
    """FLOPs of one sample: ``trained`` through forward, loss and backward; ``scored`` through one no-grad forward."""

    trained: float
    scored: float


@dataclass(frozen=True)
class WorkCounts:
    """Samples a run put through its models, summed over ranks. The cost: ``trained`` (forward + backward of the
    learner), ``scored`` (its no-grad scoring forwards), and a reference model of the learner's architecture
    (trained and scored likewise). Measurement, not cost: ``eval`` (validation) and ``probe`` forwards."""

    trained: int
    scored: int = 0
    reference_trained: int = 0
    reference_scored: int = 0
    eval: int = 0
    probe: int = 0


def _cpu_attention_formulas() -> dict:
    """The counter's own attention formulas for the CPU's fused attention, which it does not map (torch 2.x counts
    the CUDA kernels' attention but 0 for the CPU's): a measurement must not depend on the device it ran on.
    Formulas of ``custom_mapping`` receive the operator's arguments as shapes."""
    from torch.utils.flop_counter import sdpa_backward_flop_count, sdpa_flop_count

    def forward(query, key, value, *args, out_shape=None, **kwargs) -> int:
        return sdpa_flop_count(query, key, value)

    def backward(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
        return sdpa_backward_flop_count(grad_out, query, key, value)

    aten = torch.ops.aten
    ops = {"_scaled_dot_product_flash_attention_for_cpu": forward,
           "_scaled_dot_product_flash_attention_for_cpu_backward": backward}
    return {getattr(aten, name): formula for name, formula in ops.items() if hasattr(aten, name)}


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of everything ``fn()`` computes (a backward inside it included), by ``FlopCounterMode``: matrix
    products, convolutions and attention, from the operators' shapes; elementwise work and reductions count 0."""
    with FlopCounterMode(display=False, custom_mapping=_cpu_attention_formulas()) as counter:
        fn()
    return int(counter.get_total_flops())


@contextmanager
def untouched(model: torch.nn.Module, devices: list[torch.device] | tuple = ()) -> Iterator[None]:
    """Leave ``model`` and the global random streams as they were: the CPU and ``devices`` (CUDA) RNGs are forked,
    gradients and buffers (e.g. batch-norm statistics) restored, the training/evaluation mode of every submodule put
    back. Parameters are never stepped here, so their values stay as well."""
    cuda = [d for d in devices if torch.device(d).type == "cuda"]
    grads = {p: p.grad for p in model.parameters()}
    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    modes = {m: m.training for m in model.modules()}
    try:
        with torch.random.fork_rng(devices=cuda):
            yield
    finally:
        for p, g in grads.items():
            p.grad = g  # None before training: set_to_none
        with torch.no_grad():
            for name, b in model.named_buffers():
                if name in buffers:
                    b.copy_(buffers[name])
        for m, training in modes.items():
            m.training = training


def measure_sample_flops(model: torch.nn.Module, loss_of_batch: Callable[[], torch.Tensor], batch_size: int, *,
                         devices: list[torch.device] | tuple = ()) -> SampleFlops:
    """FLOPs per sample of training and of scoring ``model``, measured on one dummy micro-batch.

    ``loss_of_batch()``: forward and loss (a scalar) of ``batch_size`` samples; run in training mode, then
    backpropagated (gradients discarded, no optimizer step), and again, as a scoring pass does, in evaluation mode
    under ``torch.inference_mode``. Changes nothing (see :func:`untouched`; ``devices``: the CUDA devices whose RNGs
    the model's random ops draw from)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    with untouched(model, devices):
        for p in model.parameters():
            p.grad = None

        def train_step() -> None:
            model.train()
            loss_of_batch().backward()

        trained = count_flops(train_step)
        for p in model.parameters():
            p.grad = None

        def score_step() -> None:
            model.eval()
            with torch.inference_mode():
                loss_of_batch()

        scored = count_flops(score_step)
    return SampleFlops(trained=trained / batch_size, scored=scored / batch_size)


def compute_record(counts: WorkCounts, flops: SampleFlops) -> dict:
    """results.json's ``compute``: the counts, the FLOPs per sample, and the cost: ``total_flops`` of trained,
    scored and reference work (validation and probes are measurement, not cost) and ``train_equivalents``, that
    cost in trained samples of the learner. Pure arithmetic."""
    trained = counts.trained + counts.reference_trained
    scored = counts.scored + counts.reference_scored
    total = flops.trained * trained + flops.scored * scored
    # Written as samples plus scored samples at their relative cost (not total / flops.trained), so a run without
    # scoring has exactly its trained samples whatever the rounding of large products.
    equivalents = trained + scored * (flops.scored / flops.trained) if flops.trained > 0 else 0.0
    return {
        "flops_per_trained_sample": float(flops.trained),
        "flops_per_scored_sample": float(flops.scored),
        "trained_samples": int(counts.trained),
        "scored_samples": int(counts.scored),
        "reference_trained_samples": int(counts.reference_trained),
        "reference_scored_samples": int(counts.reference_scored),
        "eval_samples": int(counts.eval),
        "probe_samples": int(counts.probe),
        "total_flops": float(total),
        "train_equivalents": float(equivalents),
    }


def format_flops(flops: float) -> str:
    """A FLOP count for people: ``1.23 GFLOPs``."""
    for unit, scale in (("PFLOPs", 1e15), ("TFLOPs", 1e12), ("GFLOPs", 1e9), ("MFLOPs", 1e6), ("kFLOPs", 1e3)):
        if abs(flops) >= scale:
            return f"{flops / scale:.3g} {unit}"
    return f"{flops:.3g} FLOPs"

