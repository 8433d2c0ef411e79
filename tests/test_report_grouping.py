"""The report keeps runs of different settings apart: a real learning-rate sweep gives two rows and two labelled
curves; seeds of one setting stay one row; provenance, the resolved config and the chosen samples reach results.json
and selections.npz."""

import json

import numpy as np
import pytest

from attent_vision.report import build_report

from conftest import run_in_process

TINY = ["debug=smoke", "selection=none", "trainer.epochs=2", "data.synthetic.num_train=32", "data.synthetic.num_val=16",
        "trainer.val_every_epochs=1"]


@pytest.fixture(scope="module")
def lr_sweep(tmp_path_factory):
    """Two learning rates x two seeds as one real multirun."""
    sweep = tmp_path_factory.mktemp("lr_sweep")
    out = run_in_process(["train.py", "-m", *TINY, "optim.blr=0.004,0.02", "trainer.seed=0,1",
                          f"hydra.sweep.dir={sweep}"])
    assert out.returncode == 0, out.stderr[-3000:]
    return sweep


def test_two_learning_rates_are_two_rows_with_two_labelled_curves(lr_sweep, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    plt.close("all")
    monkeypatch.setattr(plt, "close", lambda fig=None: None)  # keep the figures to read their legends back
    built = build_report([lr_sweep], tmp_path / "report")
    figures = {f.axes[0].get_title(): f for f in map(plt.figure, plt.get_fignums())}
    curves = next(f for title, f in figures.items() if title.startswith("Validation loss vs wall time"))
    legend = [t.get_text() for t in curves.axes[0].get_legend().get_texts()]
    assert legend == ["full data (optim.blr=0.004)", "full data (optim.blr=0.02)"]
    assert len(curves.axes[0].get_lines()) == 4  # one curve per run: two learning rates x two seeds
    monkeypatch.undo()
    plt.close("all")
    rows = built["rows"]
    assert [r["differs"] for r in rows] == ["optim.blr=0.004", "optim.blr=0.02"]
    assert all(r["seeds"] == 2 and r["reruns"] == 0 for r in rows)
    assert len({r["val_loss"] for r in rows}) == 2  # not the mean of both learning rates
    assert [r["label"] for r in rows] == ["full data (optim.blr=0.004)", "full data (optim.blr=0.02)"]
    assert "| optim.blr=0.004 |" in built["text"] and "| optim.blr=0.02 |" in built["text"]
    # Each row's relative wall time is against the full-data row of its own learning rate: itself.
    assert [r["rel_wall"] for r in rows] == [1.0, 1.0]


def test_results_carry_the_config_and_provenance(lr_sweep):
    result = json.loads(next(lr_sweep.glob("*/results.json")).read_text())
    assert result["config"]["optim"]["blr"] in (0.004, 0.02) and result["config"]["trainer"]["epochs"] == 2
    p = result["provenance"]
    assert p["packages"]["torch"] and p["packages"]["attent-vision"] and p["host"] and p["device"] == "cpu"
    assert len(p["commit"]) == 40 and isinstance(p["dirty"], bool)  # the suite runs in a git checkout


def test_full_data_trains_every_sample_every_epoch(lr_sweep):
    folder = next(lr_sweep.glob("*/results.json")).parent
    arrays = dict(np.load(folder / "selections.npz"))
    assert arrays["num_samples"] == 32 and (arrays["train_counts"] == 2).all()
    assert arrays["selection_epochs"].size == 0
    summary = json.loads((folder / "results.json").read_text())["sample_selection"]
    assert summary == {"file": "selections.npz", "num_samples": 32, "counts_complete": True, "never_trained": 0,
                       "train_count_min": 2, "train_count_max": 2, "train_count_mean": 2.0}
