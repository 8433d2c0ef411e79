"""The report on hand-made run folders in the real on-disk format (results.json written through the results schema,
the resolved config.yaml beside it): seeds counted from trainer.seed with reruns apart, the experiment column,
settings that differ beyond the row's name, the help text, the plots' axes, titles and legends, and the score
histograms. Fast: no training."""

import math

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from omegaconf import OmegaConf

from attent_vision.engine.results import COMPLETED, RunResults, write_json_atomic
from attent_vision.errors import UserError
from attent_vision.report import PLOTS, build_report, main
from attent_vision.report.selection_plot import chosen_and_percentile, selection_arrays
from attent_vision.teaching.score_table import score_histogram


def write_run(folder, *, seed=0, val_loss=1.0, experiment="default", selection="soft", ratio="incremental",
              interval="incremental", temperature=1.0, histograms=True, seed_in_results=True):
    """A completed pretraining run folder as the trainer writes it: results.json and the resolved config.yaml."""
    import torch

    folder.mkdir(parents=True)
    setting = {"ratio": ratio, "interval": interval, "selection": selection, "temperature": temperature,
               "model": "multimae_pico", "data": "synthetic", "world_size": 1, "device": "cpu", "precision": "fp32"}
    if seed_in_results:
        setting["seed"] = seed
    history = [{"epoch": e, "kind": "full" if e == 1 else "subset", "samples": 96, "global_step": 6 * e,
                "samples_seen": 96 * e, "wall_s": 2.0 * e, "train_loss": 3.0 - e * 0.1, "step_samples_per_s": 50.0 + e,
                "val_loss": val_loss + (3 - e) * 0.5} for e in (1, 2, 3)]
    selections = []
    if selection not in ("none", "random"):
        for epoch in (2, 3):
            scores = torch.linspace(0, 1, 96) * epoch
            record = {"epoch": epoch, "cycle": epoch - 1, "ratio": 0.5, "size": 48, "interval": 1,
                      "samples_scored": 96, "scoring_s": 0.5, "scoring_samples_per_s": 190.0, "score": "loss",
                      "scores": {"scored": 96, "mean": 0.5 * epoch}, "selected_score_mean": 0.7 * epoch}
            if histograms:
                record["score_histogram"] = score_histogram(scores)
            selections.append(record)
    results = RunResults(
        stage="pretrain", status=COMPLETED, experiment=experiment, run_dir=str(folder), setting=setting,
        initial={"val_loss": val_loss + 2.0}, final={"val_loss": val_loss}, epochs=3, epochs_completed=3,
        optimizer_steps=18, planned_optimizer_steps=18, samples_seen=288, bad_samples=0, bad_examples=[],
        time_s={"train": 5.0, "data_wait": 0.1, "scoring": 1.0, "eval": 0.5, "checkpoint": 0.0, "other": 0.0,
                "total": 6.6}, history=history,
        details={"samples_scored": 96 * len(selections), "selections": selections})
    write_json_atomic(results.to_dict(), folder / "results.json")
    if selections:  # what the trainer writes beside it: each selection's top half and the scores it ranked
        arrays = {"num_samples": np.array(96), "train_counts": np.ones(96, dtype=np.int32),
                  "selection_epochs": np.array([s["epoch"] for s in selections], dtype=np.int32)}
        for i, s in enumerate(selections):
            arrays[f"selection_{i}"] = np.arange(48, 96)
            arrays[f"scores_{i}"] = np.linspace(0, 1, 96, dtype=np.float32) * s["epoch"]
        np.savez_compressed(folder / "selections.npz", **arrays)
    config = {"experiment_name": experiment, "trainer": {"seed": seed, "device": "cpu"},
              "model": {"name": "multimae_pico"},
              "ratio": {"schedule": ratio}, "interval": {"schedule": interval},
              "selection": {"strategy": selection, "temperature": temperature}, "logger": {"name": str(folder)}}
    OmegaConf.save(OmegaConf.create(config), folder / "config.yaml")
    return folder


def only_row(built):
    (row,) = built["rows"]
    return row


def test_reruns_of_one_seed_count_once(tmp_path):
    """Three runs of seed 0 and one of seed 1: two seeds, two reruns; seed 0's reruns are averaged first."""
    for i, (seed, loss) in enumerate(((0, 1.0), (0, 2.0), (0, 3.0), (1, 4.0))):
        write_run(tmp_path / "sweep" / str(i), seed=seed, val_loss=loss)
    built = build_report([tmp_path / "sweep"], tmp_path / "out")
    row = only_row(built)
    assert row["seeds"] == 2 and row["reruns"] == 2 and row["seed_values"] == "0 1"
    assert row["val_loss"] == pytest.approx(3.0) and row["val_loss_std"] == pytest.approx(math.sqrt(2))
    text = (tmp_path / "out" / "report.md").read_text()
    assert "| seeds | reruns |" in text and "| 2 | 2 |" in text and "2 run(s) repeat a seed" in text


def test_five_reruns_of_one_seed_are_one_seed_without_spread(tmp_path):
    for i in range(5):
        write_run(tmp_path / "sweep" / str(i), seed=7, val_loss=1.0 + i)
    row = only_row(build_report([tmp_path / "sweep"], tmp_path / "out"))
    assert row["seeds"] == 1 and row["reruns"] == 4 and math.isnan(row["val_loss_std"])
    table = (tmp_path / "out" / "report.md").read_text().split("\n\n")[0]
    assert "±" not in table and "| 1 | 4 |" in table


def test_seed_comes_from_config_yaml_when_results_json_lacks_it(tmp_path):
    write_run(tmp_path / "sweep" / "a", seed=3, seed_in_results=False)
    write_run(tmp_path / "sweep" / "b", seed=3, seed_in_results=False)
    write_run(tmp_path / "sweep" / "c", seed=4, seed_in_results=False)
    row = only_row(build_report([tmp_path / "sweep"], tmp_path / "out"))
    assert (row["seeds"], row["reruns"], row["seed_values"]) == (2, 1, "3 4")


def test_experiment_column_and_settings_that_differ_are_separate_rows(tmp_path):
    write_run(tmp_path / "sweep" / "a", experiment="paper_soft")
    write_run(tmp_path / "sweep" / "b", experiment="soft_learnability")
    write_run(tmp_path / "sweep" / "c", experiment="temps", temperature=0.5)
    write_run(tmp_path / "sweep" / "d", experiment="temps", temperature=2.0)
    built = build_report([tmp_path / "sweep"], tmp_path / "out")
    lines = (tmp_path / "out" / "report.md").read_text().splitlines()
    assert lines[0].startswith("| experiment | ratio | interval | selection | differs | seeds | wall s |")
    assert [line.split(" | ")[0] for line in lines[2:6]] == ["| paper_soft", "| soft_learnability", "| temps",
                                                              "| temps"]
    assert [r["differs"] for r in built["rows"]] == ["", "", "selection.temperature=0.5", "selection.temperature=2.0"]
    assert all(r["seeds"] == 1 and r["reruns"] == 0 for r in built["rows"])
    # Legend labels stay short and only grow where two rows would read alike.
    assert [r["label"] for r in built["rows"]] == [
        "soft / incremental / incremental (paper_soft)", "soft / incremental / incremental (soft_learnability)",
        "soft / incremental / incremental (temps) (selection.temperature=0.5)",
        "soft / incremental / incremental (temps) (selection.temperature=2.0)"]


def test_help_lists_every_file_the_report_writes(tmp_path, capsys):
    write_run(tmp_path / "sweep" / "a", selection="none")
    write_run(tmp_path / "sweep" / "b")
    built = build_report([tmp_path / "sweep"], tmp_path / "out")
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = capsys.readouterr().out
    written = [p.name for p in built["files"]]
    assert written == ["report.md", "report.csv", "table3_vs_paper.md", "table3_vs_paper.csv", *PLOTS]
    assert all(name in help_text for name in written) and "two plots" not in help_text


@pytest.fixture
def kept_figures(monkeypatch):
    """The report's figures stay open after saving, so their axes can be read back."""
    plt.close("all")
    monkeypatch.setattr(plt, "close", lambda fig=None: None)
    yield lambda: {fig.axes[0].get_title(): fig for fig in map(plt.figure, plt.get_fignums())}
    monkeypatch.undo()
    plt.close("all")


def test_plots_have_linear_axes_titles_compact_legends_and_whole_epochs(tmp_path, kept_figures):
    """Three settings with three seeds each: one legend entry per setting (plus the two marker kinds)."""
    settings = [dict(selection="none"), dict(selection="soft"), dict(selection="hard", ratio="cosine")]
    for s, setting in enumerate(settings):
        for seed in range(3):
            write_run(tmp_path / "sweep" / f"{s}_{seed}", seed=seed, **setting)
    build_report([tmp_path / "sweep"], tmp_path / "out")
    figures = kept_figures()
    by_name = {title.split("\n")[0]: fig for title, fig in figures.items()}
    for name in ("Validation loss vs wall time", "Validation loss vs training samples seen", "Throughput per epoch"):
        ax = by_name[name].axes[0]
        assert ax.get_yscale() == "linear" and ax.get_xscale() == "linear"
        assert "data synthetic" in ax.get_title() and "model multimae_pico" in ax.get_title()
        assert "seeds 0, 1, 2" in ax.get_title()
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert labels[:3] == ["full data", "soft / incremental / incremental", "hard / cosine / incremental"]
    throughput = by_name["Throughput per epoch"].axes[0]
    assert [t.get_text() for t in throughput.get_legend().get_texts()][3:] == ["training step", "scoring pass"]
    ticks = [t for t in throughput.get_xticks() if throughput.get_xlim()[0] <= t <= throughput.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks) and min(ticks) >= 1  # epoch 1 = the first epoch


def test_score_histograms_plot_one_panel_per_setting_and_skips_runs_without(tmp_path, kept_figures):
    write_run(tmp_path / "sweep" / "full", selection="none")
    write_run(tmp_path / "sweep" / "soft", selection="soft")
    write_run(tmp_path / "sweep" / "hard", selection="hard")
    write_run(tmp_path / "sweep" / "old", selection="hard", ratio="cosine", histograms=False)  # an older file
    built = build_report([tmp_path / "sweep"], tmp_path / "out")
    assert (tmp_path / "out" / "score_histograms.png") in built["files"]
    kept_figures()
    fig = next(f for f in map(plt.figure, plt.get_fignums())
               if f._suptitle is not None and f._suptitle.get_text().startswith("Scores the teacher selected from"))
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["soft / incremental / incremental (seed 0)",
                                                 "hard / incremental / incremental (seed 0)"]
    assert all(len(ax.patches) == 2 for ax in panels)  # one histogram line per selection
    assert "data synthetic" in fig._suptitle.get_text()


def test_no_histograms_no_histogram_plot(tmp_path):
    write_run(tmp_path / "sweep" / "old", histograms=False)
    built = build_report([tmp_path / "sweep"], tmp_path / "out")
    assert not (tmp_path / "out" / "score_histograms.png").exists()
    assert "score_histograms.png" not in [p.name for p in built["files"]]


def test_without_matplotlib_the_tables_are_written_and_the_error_says_what_to_install(tmp_path, monkeypatch, capsys):
    write_run(tmp_path / "sweep" / "a")
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)  # import matplotlib raises ImportError
    with pytest.raises(UserError, match=r"pip install 'attent-vision\[report\]'"):
        build_report([tmp_path / "sweep"], tmp_path / "out")
    assert (tmp_path / "out" / "report.md").is_file()
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path / "sweep"), "--out", str(tmp_path / "out2")])
    assert exit_.value.code == 2 and "attent-vision[report]" in capsys.readouterr().err
    assert matplotlib  # the real module is back after the test


def test_score_histogram_counts_only_finite_scores():
    import torch

    scores = torch.tensor([0.0, 1.0, 1.0, 2.0, float("nan"), float("-inf")])
    hist = score_histogram(scores)
    assert len(hist["counts"]) == 20 and len(hist["edges"]) == 21 and sum(hist["counts"]) == 4
    assert hist["edges"][0] == 0.0 and hist["edges"][-1] == 2.0 and hist["counts"][0] == 1 and hist["counts"][-1] == 1
    assert score_histogram(torch.tensor([float("nan"), float("-inf")])) is None


def test_chosen_vs_score_counts_each_selection_and_ranks_within_it(tmp_path):
    folder = write_run(tmp_path / "sweep" / "a")
    arrays = selection_arrays({"run_dir": str(folder)})
    chosen, percentile = chosen_and_percentile(arrays)
    assert chosen.tolist() == [0] * 48 + [2] * 48  # the top half, chosen by both selections
    assert percentile[0] == 0 and percentile[-1] == 1 and (np.diff(percentile) > 0).all()
    built = build_report([tmp_path / "sweep"], tmp_path / "out")
    assert (tmp_path / "out" / "chosen_vs_score.png") in built["files"]
    # A run without selections.npz (older, or full data) has no panel, and no figure when no run has one.
    (folder / "selections.npz").unlink()
    assert selection_arrays({"run_dir": str(folder)}) is None
    assert (tmp_path / "out2" / "chosen_vs_score.png") not in build_report(
        [tmp_path / "sweep"], tmp_path / "out2")["files"]
