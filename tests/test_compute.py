"""The deterministic compute axis (results.json "compute"): FLOPs measured by torch's counter, the record's
arithmetic, what a pretraining run records, that measuring changes nothing, learnability's reference model, and
that a resumed run records what an uninterrupted one does."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attent_vision.engine.compute import (
    COMPUTE_FIELDS,
    SampleFlops,
    WorkCounts,
    compute_record,
    count_flops,
    measure_sample_flops,
)
from attent_vision.pretraining.trainer import pretrain

from conftest import compose_train

SMOKE = ["debug=smoke"]


def run(tmp_path, name, overrides):
    return pretrain(compose_train(SMOKE + overrides), tmp_path / name)


def test_flop_counter_gives_the_hand_computed_numbers():
    linear = torch.nn.Linear(10, 20)
    x = torch.randn(4, 10)
    forward = 2 * 4 * 10 * 20  # one multiply-add per input x output x sample
    # Training: the forward, and a backward that computes the weight's gradient only (the input needs none).
    flops = measure_sample_flops(linear, lambda: linear(x).sum(), batch_size=4)
    assert flops == SampleFlops(trained=2 * forward / 4, scored=forward / 4)
    # With an input that needs its gradient too, the backward costs twice the forward.
    x_grad = torch.randn(4, 10, requires_grad=True)
    assert count_flops(lambda: linear(x_grad).sum().backward()) == 3 * forward
    # Fused attention is counted on the CPU as on GPUs: QK^T and AV, 2 x b x h x s x s x d each.
    q = torch.randn(2, 4, 16, 8)
    with torch.inference_mode():
        assert count_flops(lambda: F.scaled_dot_product_attention(q, q, q)) == 2 * (2 * 2 * 4 * 16 * 16 * 8)


def test_record_arithmetic():
    flops = SampleFlops(trained=300.0, scored=100.0)
    counts = WorkCounts(trained=1000, scored=600, reference_trained=50, reference_scored=90, eval=70, probe=30)
    record = compute_record(counts, flops)
    assert list(record) == list(COMPUTE_FIELDS)
    # trained work (learner + reference) at 300, scored work at 100; validation and probes are not cost
    assert record["total_flops"] == 300.0 * 1050 + 100.0 * 690 == 384000.0
    assert record["train_equivalents"] == pytest.approx(384000.0 / 300.0) == 1280.0
    assert (record["eval_samples"], record["probe_samples"]) == (70, 30)
    assert isinstance(record["trained_samples"], int) and isinstance(record["total_flops"], float)
    # Without scoring the cost is exactly the trained samples, however large.
    big = compute_record(WorkCounts(trained=123456789), SampleFlops(trained=3.3e9, scored=1.1e9))
    assert big["train_equivalents"] == 123456789 and big["scored_samples"] == 0


def test_pretraining_run_records_its_compute(tmp_path):
    results = run(tmp_path, "soft", [])
    c = results["compute"]
    assert set(c) == set(COMPUTE_FIELDS)
    assert c["trained_samples"] == results["samples_seen"] > 0
    assert c["scored_samples"] == results["samples_scored"] > 0
    assert 0 < c["flops_per_scored_sample"] < c["flops_per_trained_sample"]
    assert c["reference_trained_samples"] == c["reference_scored_samples"] == 0
    assert c["total_flops"] == pytest.approx(c["flops_per_trained_sample"] * c["trained_samples"]
                                             + c["flops_per_scored_sample"] * c["scored_samples"])
    assert c["train_equivalents"] == pytest.approx(c["total_flops"] / c["flops_per_trained_sample"])
    assert c["trained_samples"] < c["train_equivalents"] < c["trained_samples"] + c["scored_samples"]
    # Every validation pass (at initialisation and after each evaluated epoch) forwards the 32 validation scenes.
    evaluations = 1 + sum(1 for h in results["history"] if "val_loss" in h)
    assert c["eval_samples"] == 32 * evaluations and c["probe_samples"] == 0

    full = run(tmp_path, "none", ["selection=none", "trainer.epochs=2"])["compute"]
    assert full["scored_samples"] == 0 and full["train_equivalents"] == full["trained_samples"] > 0
    # One model, one measurement: the per-sample numbers do not depend on the selection strategy.
    assert (full["flops_per_trained_sample"], full["flops_per_scored_sample"]) == \
        (c["flops_per_trained_sample"], c["flops_per_scored_sample"])


def test_measuring_flops_changes_neither_the_model_nor_any_random_stream():
    from attent_vision.pretraining.builders import build_loss, build_pretrain_model
    from attent_vision.pretraining.work import measure_pretrain_flops

    cfg = compose_train(SMOKE)
    torch.manual_seed(0)
    model = build_pretrain_model(cfg)
    loss_fn = build_loss(cfg, model)
    model.eval()  # a mode the measurement switches away from (it trains, then scores)
    first = next(model.parameters())
    first.grad = torch.full_like(first, 0.5)  # a gradient it must put back
    params = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()

    flops = measure_pretrain_flops(model, loss_fn, cfg, torch.device("cpu"), "fp32", world_size=1)

    assert flops.trained > flops.scored > 0
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(v, params[k]) for k, v in model.state_dict().items())
    assert not any(m.training for m in model.modules())
    assert torch.equal(first.grad, torch.full_like(first, 0.5))
    assert all(p.grad is None for p in model.parameters() if p is not first)
    # The same numbers every time: a resumed run measures what its first start measured.
    assert measure_pretrain_flops(model, loss_fn, cfg, torch.device("cpu"), "fp32", world_size=1) == flops


# learnability with free scores and no time-based cap on refreshes, so the scored counts are deterministic.
LEARNABILITY = ["teaching.score=learnability", "teaching.score_source=training", "teaching.reference_max_steps=4",
                "teaching.reference_holdout=0.25", "teaching.reference_cache=false",
                "teaching.max_scoring_fraction=null"]


def test_learnability_counts_its_reference_model_and_resumes_to_the_same_compute(tmp_path):
    """Smoke data: 96 training scenes, a quarter of them the reference model's holdout. Stopping after 7 steps
    leaves the run in the middle of its first subset epoch, after the reference model was trained and scored."""
    uninterrupted = run(tmp_path, "uninterrupted", LEARNABILITY)
    c = uninterrupted["compute"]
    assert c["reference_trained_samples"] == 4 * 16  # 4 steps of the smoke batch
    assert uninterrupted["num_train_samples"] == 72  # the holdout left the training set
    assert c["reference_scored_samples"] == 72 * 4  # reference_draws=4 forwards per training sample
    assert c["scored_samples"] == uninterrupted["samples_scored"]
    trained = c["trained_samples"] + c["reference_trained_samples"]
    scored = c["scored_samples"] + c["reference_scored_samples"]
    assert c["total_flops"] == pytest.approx(c["flops_per_trained_sample"] * trained
                                             + c["flops_per_scored_sample"] * scored)

    stopped = run(tmp_path, "resumed", ["trainer.stop_after_steps=7", *LEARNABILITY])
    assert stopped["status"] == "interrupted"
    assert stopped["compute"]["reference_trained_samples"] == 4 * 16  # trained before the stop ...
    assert stopped["compute"]["trained_samples"] == stopped["samples_seen"] < c["trained_samples"]
    resumed = run(tmp_path, "resumed", LEARNABILITY)
    assert resumed["status"] == "completed"
    assert resumed["compute"] == c  # ... and not again after it: every count and FLOP as without the stop
    # selections.npz maps the training samples (the split less the holdout) to the dataset's indices
    from attent_vision.pretraining.sample_record import read_selections

    arrays = read_selections(tmp_path / "resumed" / "selections.npz")
    assert arrays["folder_index"].shape == (72,) and (np.diff(arrays["folder_index"]) > 0).all()
    assert arrays["folder_index"].max() <= 95 and arrays["num_samples"] == 72
