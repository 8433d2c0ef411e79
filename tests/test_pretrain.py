"""End-to-end pretraining on the embedded data through the Python API: learning, accounting, reproducibility,
bit-identical resumption, and hard selection picking the hard samples."""

import csv

import numpy as np
import pytest
import torch

from attent_vision.cli.entry import pretrain_job
from attent_vision.engine.results import read_results
from attent_vision.pretraining.sample_record import read_selections
from attent_vision.pretraining.trainer import Pretrainer, pretrain
from attent_vision.teaching import select

from conftest import compose_train

SMOKE = ["debug=smoke"]


def run(tmp_path, name, overrides):
    cfg = compose_train(SMOKE + overrides)
    return pretrain(cfg, tmp_path / name), tmp_path / name


def selections(results):
    """What was selected and why, without the timings (which differ from run to run)."""
    return [{k: v for k, v in s.items() if not k.startswith("scoring_s") and k != "reference_s"}
            for s in results["selections"]]


def final_weights(run_dir):
    return torch.load(run_dir / "pretrained.pth", weights_only=True)["model"]


def test_tiny_run_learns_and_accounts_for_every_step(tmp_path):
    results, run_dir = run(tmp_path, "a", ["trainer.epochs=7"])
    assert results["status"] == "completed"
    assert results["final"]["val_loss"] < 0.85 * results["initial"]["val_loss"]
    # The plan is the truth: steps, samples and epochs that ran are exactly those planned.
    cfg = compose_train(SMOKE + ["trainer.epochs=7"])
    pt = Pretrainer(cfg, tmp_path / "plan_only")
    assert results["optimizer_steps"] == results["planned_optimizer_steps"] == pt.plan.total_steps(16)
    assert results["samples_seen"] == pt.plan.samples_planned
    assert [h["epoch"] for h in results["history"]] == list(range(1, 8))
    assert [h["kind"] for h in results["history"]] == [e.kind for e in pt.plan.epochs]
    assert results["scoring_passes"] == len(pt.plan.selections)  # soft re-scores before every subset epoch
    assert results["samples_scored"] == results["scoring_passes"] * results["num_train_samples"]
    # results.json on disk is what the API returned; the split of wall time is complete.
    on_disk = read_results(run_dir / "results.json")
    assert on_disk["optimizer_steps"] == results["optimizer_steps"] and "details" not in on_disk  # stage fields flat
    t = on_disk["time_s"]
    assert t["total"] >= t["train"] > 0 and t["scoring"] > 0 and t["eval"] > 0
    assert abs(sum(v for k, v in t.items() if k != "total") - t["total"]) < 0.01
    assert (run_dir / "reconstructions" / "final.png").is_file() and (run_dir / "config.yaml").is_file()
    # selections.npz: each selection's subset (its planned size, sorted, the top of its scores on average) and
    # per-sample training counts that add up to the samples trained.
    chosen = read_selections(run_dir / "selections.npz")
    sizes = [s["size"] for s in results["selections"]]
    assert [chosen[f"selection_{i}"].size for i in range(len(sizes))] == sizes
    assert list(chosen["selection_epochs"]) == [s["epoch"] for s in results["selections"]]
    for i, record in enumerate(results["selections"]):
        indices, scores = chosen[f"selection_{i}"], chosen[f"scores_{i}"]
        assert (np.diff(indices) > 0).all() and scores.shape == (results["num_train_samples"],)
        assert scores[indices].mean() == pytest.approx(record["selected_score_mean"], rel=1e-5)
        assert scores[indices].mean() > scores.mean()  # soft selection prefers high scores
    assert chosen["train_counts"].sum() == results["samples_seen"]


def test_same_seed_same_subsets_and_weights(tmp_path):
    a, dir_a = run(tmp_path, "a", [])
    b, dir_b = run(tmp_path, "b", ["data.num_workers=2"])  # worker processes must not change anything
    assert len(a["selections"]) == 3 and selections(a) == selections(b)
    wa, wb = final_weights(dir_a), final_weights(dir_b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    c, dir_c = run(tmp_path, "c", ["trainer.seed=1"])
    assert any(not torch.equal(wa[k], final_weights(dir_c)[k]) for k in wa)


# Free scores + refresh: the teacher's state carries every score's age; the cost cap is off because its decisions
# depend on measured time (docs/method.md).
FREE_SCORES = ["teaching.score_source=training", "teaching.max_scoring_fraction=null", "teaching.refresh_fraction=0.3"]


# Issue 12's options: a trained reference model and unbiased weights; prune's weighted subsets with the progress
# score's history. Both must be in the checkpoint for the resumed run to match.
# The reference model is trained in both runs (no cache): a resumed run must train the same one.
LEARNABILITY = [*FREE_SCORES, "teaching.score=learnability", "selection.reweight=unbiased",
                "teaching.reference_max_steps=2", "teaching.reference_cache=false"]
PRUNE = ["selection=prune", "teaching.score=progress", "teaching.max_scoring_fraction=null"]


# Issue 22's options: scores of K draws under shared masks, reduced to their top patches; normalised free scores;
# RS2's permutations (their position is derived from the earlier selections' sizes).
CONSISTENT = ["teaching.score_draws=2", "teaching.shared_mask=true", "teaching.score_top_q=0.5"]
NORMALISED = [*FREE_SCORES, "teaching.normalize_free_scores=true", "teaching.score_draws=2"]
RS2 = ["selection=rs2"]


@pytest.mark.parametrize("stop_after,scores", [(7, []), (6, []), (7, FREE_SCORES), (7, LEARNABILITY), (7, PRUNE),
                                               (7, CONSISTENT), (7, NORMALISED), (7, RS2)],
                         ids=["mid", "boundary", "free", "learnability", "prune", "consistent", "normalised", "rs2"])
def test_run_stopped_mid_cycle_and_resumed_is_bit_identical(tmp_path, stop_after, scores):
    """Smoke plan: epoch 0 full (6 steps), epoch 1 a subset epoch (2 steps), ... Stopping after 7 steps leaves the
    run in the middle of the subset epoch; after 6 it stops at the epoch boundary just before a selection."""
    reference, ref_dir = run(tmp_path, "reference", scores)
    stopped, run_dir = run(tmp_path, "resumed", [f"trainer.stop_after_steps={stop_after}", *scores])
    assert stopped["status"] == "interrupted" and stopped["optimizer_steps"] == stop_after
    resumed, _ = run(tmp_path, "resumed", scores)
    assert resumed["status"] == "completed"
    assert resumed["optimizer_steps"] == reference["optimizer_steps"]
    assert selections(resumed) == selections(reference)
    ref_w, res_w = final_weights(ref_dir), final_weights(run_dir)
    assert all(torch.equal(ref_w[k], res_w[k]) for k in ref_w)
    assert resumed["final"]["val_loss"] == reference["final"]["val_loss"]
    # What each selection chose, the scores it chose by and every sample's training count match too.
    chosen, chosen_ref = read_selections(run_dir / "selections.npz"), read_selections(ref_dir / "selections.npz")
    assert chosen.keys() == chosen_ref.keys() and all(np.array_equal(chosen[k], chosen_ref[k], equal_nan=True)
                                                      for k in chosen)
    assert resumed["sample_selection"] == reference["sample_selection"]
    if scores in (LEARNABILITY, PRUNE):  # weighted subsets: their weights were part of what matched
        assert all(s["weights"]["max"] > s["weights"]["min"] for s in resumed["selections"])
    if scores == FREE_SCORES:  # the refreshes happened, uncapped, and their ages are part of what matched
        assert [(s["samples_scored"], s["refresh_decision"]) for s in resumed["selections"]] == [(29, "uncapped")] * 3
        assert "score_age_mean" in resumed["selections"][0]


def test_resume_refuses_a_run_folder_with_different_settings(tmp_path):
    from attent_vision.errors import CheckpointError

    run(tmp_path, "r", ["trainer.stop_after_steps=3"])
    with pytest.raises(CheckpointError, match="selection.strategy: 'soft' -> 'hard'"):
        run(tmp_path, "r", ["selection=hard"])
    # Augmentation changes what is computed too; loader and logging settings do not (an explicit allow-list).
    with pytest.raises(CheckpointError, match=r"data.hflip_prob: 0.5 -> 0.0"):
        run(tmp_path, "r", ["data.hflip_prob=0.0"])
    resumed, _ = run(tmp_path, "r", ["data.num_workers=1", "trainer.log_every_steps=1", "trainer.stop_after_steps=1"])
    assert resumed["status"] == "interrupted" and resumed["optimizer_steps"] == 4
    # Many changes at once: every one is counted and the first ten named, with the remedy that works, and the
    # refusal comes before the stage builds its data (a new synthetic dataset would be generated for num_train=50).
    from attent_vision.data.cache import default_cache_dir

    cached = sorted(default_cache_dir().glob("synthetic-*"))
    changes = ["model.decoder_depth=1", "trainer.epochs=9", "data.synthetic.num_train=50", "optim.blr=0.01",
               "optim.weight_decay=0.1", "data.hflip_prob=0.0", "selection.temperature=2.0", "teaching.total_cycles=3",
               "ratio.final_ratio=0.5", "trainer.batch_size=8", "model.alpha=0.5", "optim.min_lr=0.0"]
    with pytest.raises(CheckpointError) as refused:
        run(tmp_path, "r", changes)
    message = str(refused.value)
    named = [change.split("=")[0] for change in changes]
    assert all(key in message for key in named), message
    assert "data.synthetic.num_train: 96 -> 50" in message and " more: " in message
    assert "checkpoint.resume=archive" in message and "hydra.run.dir" in message
    assert "checkpoint.resume=never" not in message  # it would refuse again over these checkpoints
    assert sorted(default_cache_dir().glob("synthetic-*")) == cached


def test_hard_selection_picks_the_hard_samples(tmp_path):
    """rgb-only MAE on scenes with a known per-scene noise level: unpredictable noise is what makes a scene hard.
    After a little training, hard selection's top 20% must be the noisiest scenes."""
    cfg = compose_train(SMOKE + ["selection=none", "model.in_domains=[rgb]", "model.out_domains=[rgb]",
                                 "trainer.epochs=6", "data.synthetic.max_noise=0.4", "data.synthetic.num_train=200",
                                 "optim.blr=1e-2"])
    trainer = Pretrainer(cfg, tmp_path / "hard")
    trainer.run()
    trainer.teacher.score(torch.arange(trainer.num_train), epoch=0, step=trainer.progress.global_step)
    scores = trainer.teacher.scores()
    folder = trainer.views["train"].folder
    with open(folder.root / "samples.csv") as f:
        noise_of = {row["stem"]: float(row["noise"]) for row in csv.DictReader(f)}
    noise = torch.tensor([noise_of[s.stem] for s in folder.samples])
    k = 40
    chosen = select(scores, k, "hard")
    noisiest = set(torch.topk(noise, k).indices.tolist())
    assert len(noisiest & set(chosen.tolist())) / k >= 0.8
    assert noise[chosen].mean() > 2.5 * noise.mean()


def test_downstream_fine_tunes_complete_the_row(tmp_path):
    from attent_vision.report import run_row

    run_dir = tmp_path / "ds"
    results = pretrain_job(compose_train(SMOKE + ["downstream.tasks=[nyuv2_depth,imagenet_s50_cls]",
                                                  "downstream.overrides=['trainer.epochs=1']"]), run_dir)
    assert set(results["downstream"]) == {"nyuv2_depth", "imagenet_s50_cls"}
    assert all(r["status"] == "completed" for r in results["downstream"].values())
    assert (run_dir / "downstream" / "nyuv2_depth" / "results.json").is_file()
    row = run_row(read_results(run_dir / "results.json"))
    assert row["NYUv2 delta1"] == 100 * results["downstream"]["nyuv2_depth"]["final"]["val_delta1"]
    assert row["ImageNetS50 top1"] >= 0 and results["time_s"]["downstream"] > 0


def test_a_checkpoint_of_another_format_is_refused_in_one_line(tmp_path):
    from attent_vision.engine.checkpoint import CheckpointManager, atomic_torch_save
    from attent_vision.errors import CheckpointError

    path = tmp_path / "checkpoints" / "step_00000003.pt"
    atomic_torch_save({"format_version": 1, "model": {}, "optimizer": {}, "progress": {}}, path)
    with pytest.raises(CheckpointError, match="another version of attent-vision .*start a new run folder"):
        CheckpointManager(tmp_path / "checkpoints").load(path)


def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog):
    """Truncate the newest checkpoint and leave a stale temporary file (a kill -9 mid-write): the rerun removes the
    temporary, reports the bad file, resumes from the previous checkpoint and still ends identical."""
    reference, ref_dir = run(tmp_path, "reference", [])
    keep = ["checkpoint.every_steps=1", "checkpoint.keep_last=3"]
    stopped, run_dir = run(tmp_path, "resumed", ["trainer.stop_after_steps=7", *keep])
    newest = sorted((run_dir / "checkpoints").glob("step_*.pt"))[-1]
    assert newest.name == "step_00000007.pt"
    newest.write_bytes(newest.read_bytes()[:1000])
    stale = run_dir / "checkpoints" / "step_00000008.pt.abc123.tmp"
    stale.write_bytes(b"partial")
    with caplog.at_level("WARNING"):
        resumed, _ = run(tmp_path, "resumed", keep)
    assert not stale.exists()
    assert "step_00000007.pt is unreadable" in caplog.text and "resuming from step_00000006.pt" in caplog.text
    assert resumed["status"] == "completed" and selections(resumed) == selections(reference)
    ref_w, res_w = final_weights(ref_dir), final_weights(run_dir)
    assert all(torch.equal(ref_w[k], res_w[k]) for k in ref_w)
