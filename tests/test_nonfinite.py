"""A NaN or infinite loss never reaches the weights: the step is skipped, a run that keeps diverging stops as
``diverged`` (non-zero exit, no pretrained.pth, no downstream fine-tunes, the last good checkpoint kept), and
results.json stays strict JSON."""

import json
import math

import pytest
import torch

from attent_vision.engine.nonfinite import Divergence, NonFiniteGuard
from attent_vision.engine.results import write_json_atomic

from conftest import run_in_process


def strict_json(path):
    def refuse(token):
        raise ValueError(f"non-strict JSON token {token} in {path}")

    return json.loads(path.read_text(), parse_constant=refuse)


def one_step(model, optimizer, guard, x, step, max_clip=None):
    """Forward, backward and (if the guard allows) an update; returns whether the guard allowed it."""
    optimizer.zero_grad(set_to_none=True)
    loss = model(x).sum()
    loss.backward()
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    ok = guard.step_is_finite(loss.detach(), model, optimizer, scaler, max_clip, step, distributed=False)
    if not ok:
        optimizer.zero_grad(set_to_none=True)
    optimizer.step()
    return ok


def test_guard_skips_bad_steps_then_stops_after_the_allowed_number_in_a_row():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    guard = NonFiniteGuard(max_nonfinite_steps=2)
    good, nan = torch.ones(2, 3), torch.full((2, 3), float("nan"))
    assert one_step(model, optimizer, guard, good, 1)
    before = [p.detach().clone() for p in model.parameters()]
    assert not one_step(model, optimizer, guard, nan, 2) and not one_step(model, optimizer, guard, nan, 3)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # skipped: weights untouched
    assert one_step(model, optimizer, guard, good, 4) and guard.in_a_row == 0  # a good step resets the count
    assert not one_step(model, optimizer, guard, nan, 5) and not one_step(model, optimizer, guard, nan, 6)
    with pytest.raises(Divergence, match="step 7"):
        one_step(model, optimizer, guard, nan, 7)
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters()) and guard.skipped == 5


def test_an_infinite_gradient_with_a_finite_loss_is_caught():
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    guard = NonFiniteGuard(0)
    optimizer.zero_grad()
    model(torch.ones(1, 2)).sum().backward()
    model.weight.grad[0, 0] = float("inf")
    with pytest.raises(Divergence, match="gradient norm"):
        guard.step_is_finite(torch.tensor(1.0), model, optimizer, torch.amp.GradScaler("cpu", enabled=False), None,
                             1, distributed=False)


def test_results_json_is_strict(tmp_path):
    write_json_atomic({"loss": float("nan"), "history": [{"val": float("inf")}, {"val": 1.5}]}, tmp_path / "r.json")
    assert strict_json(tmp_path / "r.json") == {"loss": None, "history": [{"val": None}, {"val": 1.5}]}


def test_a_diverging_run_stops_as_diverged_and_writes_no_weights(tmp_path):
    out = run_in_process(["train.py", "debug=smoke", "optim.blr=1e6", "downstream.tasks=[nyuv2_depth]",
                          f"hydra.run.dir={tmp_path}"])
    assert out.returncode == 3, out.stderr[-2000:]
    assert "diverged: non-finite" in out.stderr and "Traceback" not in out.stderr
    results = strict_json(tmp_path / "results.json")
    assert results["status"] == "diverged" and results["diverged"]["step"] >= 1 and results["exit_code"] == 3
    assert results["optimizer_steps"] == results["diverged"]["step"] - 1  # the diverging step is not counted
    assert not (tmp_path / "pretrained.pth").exists() and "downstream" not in results
    for ckpt in (tmp_path / "checkpoints").glob("*.pt"):  # whatever was kept holds finite weights only
        state = torch.load(ckpt, weights_only=False)["model"]
        assert all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())
    assert all(h.get("train_loss") is None or math.isfinite(h["train_loss"]) for h in results["history"])


def test_a_diverging_fine_tune_stops_the_same_way(tmp_path):
    """The guard is the shared loop's, so fine-tuning gets it too (it used to raise on one rank only)."""
    out = run_in_process(["finetune.py", "trainer.epochs=1", "optim.lr=1e12", f"hydra.run.dir={tmp_path}"])
    assert out.returncode == 3 and "diverged: non-finite" in out.stderr and "Traceback" not in out.stderr
    results = strict_json(tmp_path / "results.json")
    assert results["status"] == "diverged" and results["diverged"]["what"] in ("loss", "gradient norm")
