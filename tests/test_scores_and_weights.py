"""What to select and how to weigh it (issue 12): learnability discounts irreducible noise, progress reads the score
history, per-modality weights normalise scale, unbiased subset weights recover the full-data mean, and the
InfoBatch-style prune drops only below-mean samples, rescales the rest and trains its tail on full data."""

import csv
import math

import pytest
import torch

from attent_vision.pretraining.trainer import Pretrainer, pretrain
from attent_vision.teaching import Teacher, build_plan, build_strategy
from attent_vision.teaching.plan import FULL, SUBSET
from attent_vision.teaching.scores import ScoreInputs, build_score, combine
from attent_vision.teaching.strategies.prune import prune_candidates

from conftest import compose_train


def noise_of_samples(trainer) -> torch.Tensor:
    """The noise level of each training sample of the run (its view: learnability's holdout is not in it)."""
    view = trainer.views["train"]
    with open(view.folder.root / "samples.csv") as f:
        noise = {row["stem"]: float(row["noise"]) for row in csv.DictReader(f)}
    return torch.tensor([noise[view.folder.samples[view.folder_index(i)].stem] for i in range(len(view))])


def test_learnability_does_not_pick_the_noisy_scenes_that_loss_picks(tmp_path):
    """rgb-only MAE on scenes with a known per-scene noise level. By loss, the top 20% are mostly the noisiest 20%
    (noise no model can fit); learnability subtracts a holdout-trained reference model's loss, which carries the
    same noise, and must pick far fewer of them (measured: 92.5% by loss, 5% by learnability)."""
    cfg = compose_train(["debug=smoke", "selection=hard", "teaching.score=learnability", "model.in_domains=[rgb]",
                         "model.out_domains=[rgb]", "trainer.epochs=6", "data.synthetic.max_noise=0.4",
                         "data.synthetic.num_train=200", "optim.blr=1e-2"])
    trainer = Pretrainer(cfg, tmp_path / "learn")
    trainer.run()
    n, teacher = trainer.num_train, trainer.teacher
    teacher.score(torch.arange(n), epoch=0, step=trainer.progress.global_step)
    assert teacher.reference is not None and teacher.reference.shape == (n, 1)  # from the run's first selection
    loss, learnability = teacher.table.current[:, 0].cpu(), teacher.scores()
    noise, k = noise_of_samples(trainer), n // 5
    noisiest = set(torch.topk(noise, k).indices.tolist())
    share = {name: len(noisiest & set(torch.topk(s, k).indices.tolist())) / k
             for name, s in (("loss", loss), ("learnability", learnability))}
    assert share["loss"] >= 0.8, share
    assert share["learnability"] <= 0.30, share


def test_progress_is_how_far_the_loss_fell_since_the_previous_score():
    plan = build_plan(num_samples=4, epochs=3, strategy="soft", total_cycles=2)
    teacher = Teacher(plan, build_strategy("soft"), seed=0, score_source="training", score=build_score("progress"))
    teacher.observe(torch.arange(4), torch.tensor([5.0, 5.0, 5.0, 5.0]), torch.ones(4), step=0)
    assert torch.isnan(teacher.scores()).all()  # one score each: no history yet (ranked first when selecting)
    teacher.observe(torch.tensor([0, 1, 2]), torch.tensor([1.0, 4.0, 6.0]), torch.ones(3), step=1)
    scores = teacher.scores()
    assert scores[:3].tolist() == [4.0, 1.0, -1.0] and torch.isnan(scores[3])


def test_modality_weights_normalise_each_modality_by_its_mean():
    """semseg's cross-entropy is ~5x rgb's MSE: summed as is, it decides the ranking alone; normalised, an rgb
    outlier counts as much as a semseg one."""
    rgb = torch.tensor([0.1, 0.1, 0.4, 0.1])  # sample 2 is 4x the typical rgb loss
    semseg = torch.tensor([5.0, 6.0, 5.0, 5.0])  # sample 1 is 1.2x the typical semseg loss
    current = torch.stack([rgb, semseg], dim=1)
    per_task = build_score("loss").per_task(ScoreInputs(current, torch.full_like(current, float("nan"))))
    raw = combine(per_task, current, torch.tensor([1.0, 1.0]), normalise=False)
    normalised = combine(per_task, current, torch.tensor([1.0, 1.0]), normalise=True)
    assert raw.argmax() == 1 and normalised.argmax() == 2
    only_rgb = combine(per_task, current, torch.tensor([1.0, 0.0]), normalise=True)
    assert torch.allclose(only_rgb, rgb / rgb.mean())


def estimates(strategy, scores, k, draws, weighted):
    """Subset means of ``scores`` over ``draws`` selections: weighted by the unbiased weights or plain."""
    g = torch.Generator().manual_seed(0)
    out = torch.empty(draws, dtype=torch.float64)
    for d in range(draws):
        idx, w = strategy.select_weighted(scores, k, g)
        out[d] = (w * scores[idx].double()).mean() if weighted else scores[idx].double().mean()
    return out


@pytest.mark.parametrize("name,kwargs,k", [
    ("soft", {"temperature": 1.0, "normalization": "softmax"}, 20),
    ("soft", {"temperature": 0.5, "normalization": "zscore"}, 40),
    ("soft", {"temperature": 1.0, "normalization": "rank"}, 10),
    ("random", {}, 20),
    ("prune", {}, 75),
])
def test_unbiased_weights_recover_the_full_data_mean(name, kwargs, k):
    """Over many draws the weighted subset mean must equal the full-data mean within 4 standard errors (the error
    estimated from the draws themselves); the plain subset mean of a score-driven strategy must not."""
    scores = torch.linspace(0.0, 1.0, 100).pow(3) * 4  # right-skewed, like reconstruction losses
    strategy = build_strategy(name, **kwargs)
    draws = 3000
    weighted = estimates(strategy, scores, k, draws, weighted=True)
    tolerance = 4 * float(weighted.std()) / math.sqrt(draws)
    full = float(scores.double().mean())
    assert abs(float(weighted.mean()) - full) < tolerance, (float(weighted.mean()), full, tolerance)
    if name != "random":  # a uniform subset is unbiased unweighted too
        plain = estimates(strategy, scores, k, draws, weighted=False)
        assert abs(float(plain.mean()) - full) > 4 * tolerance


def test_prune_drops_only_below_mean_samples_and_rescales_the_rest():
    scores = torch.linspace(0.0, 1.0, 40).pow(2)  # right-skewed: 24 of 40 below the mean
    below = scores < scores.mean()
    strategy, g, k = build_strategy("prune"), torch.Generator().manual_seed(1), 30
    assert set(prune_candidates(scores).tolist()) == set(below.nonzero().squeeze(1).tolist())
    for _ in range(200):
        idx, w = strategy.select_weighted(scores, k, g)
        dropped = torch.ones(40, dtype=torch.bool)
        dropped[idx] = False
        assert dropped.sum() == 40 - k and bool(below[dropped].all())  # only below-mean samples are dropped
        keep_probability = 1 - (40 - k) / int(below.sum())
        expected = torch.where(below[idx], k / (40 * keep_probability), k / 40).double()
        assert torch.allclose(w, expected) and abs(float(w.mean()) - 1) < 1e-9
    # Left-skewed scores (few below the mean): the lowest half is prunable instead, so the planned size holds.
    left = 1 - scores
    assert prune_candidates(left).numel() == 20 and bool((left[prune_candidates(left)] <= left.median()).all())


def test_prune_plan_prunes_from_the_second_epoch_and_ends_on_full_data():
    plan = build_plan(num_samples=100, epochs=16, strategy="prune", prune_ratio=0.5, prune_delta=0.875)
    kinds = [e.kind for e in plan.epochs]
    assert kinds == [FULL] + [SUBSET] * 13 + [FULL] * 2  # epochs 1..ceil(0.875 x 16) - 1 pruned
    assert all(e.size == 75 and e.select for e in plan.epochs if e.kind == SUBSET)  # 0.5 x 100 / 2 dropped


def test_a_prune_run_follows_its_plan_with_weighted_subsets_and_a_full_tail(tmp_path):
    results = pretrain(compose_train(["debug=smoke", "selection=prune", "trainer.epochs=8"]), tmp_path / "prune")
    assert results["status"] == "completed"
    assert [h["kind"] for h in results["history"]] == ["full"] + ["subset"] * 6 + ["full"]
    assert [h["samples"] for h in results["history"]] == [96] + [72] * 6 + [96]
    assert results["optimizer_steps"] == results["planned_optimizer_steps"]
    assert results["setting"]["score_source"] == "training"  # prune always uses free scores
    for s in results["selections"]:
        assert s["weights"]["min"] == pytest.approx(72 / 96) and s["weights"]["max"] > 1  # kept below-mean: up


def test_history_shifts_only_when_an_optimizer_step_separates_two_scores():
    """A refresh right after a sample's training step re-measures the same model: it replaces the current value
    but must not become progress."""
    from attent_vision.teaching import ScoreTable

    table = ScoreTable(2, 1)
    table.record(torch.tensor([0, 1]), torch.tensor([5.0, 5.0]), step=1)
    table.record(torch.tensor([0]), torch.tensor([4.0]), step=3)  # learnt since: 5 -> previous
    table.record(torch.tensor([0]), torch.tensor([3.5]), step=3)  # same model: only the current value changes
    assert table.previous[0, 0] == 5.0 and table.current[0, 0] == 3.5
    table.record(torch.tensor([1]), torch.tensor([9.0]), step=4, keep=torch.tensor([False]))  # padding: no change
    assert table.current[1, 0] == 5.0 and torch.isnan(table.previous[1, 0])


def test_prune_breaks_ties_at_random_not_by_index():
    """With no finite scores yet (progress before any history) every score is equal: the prunable half must be a
    random half, not the first samples by index."""
    equal = torch.zeros(40)
    halves = {tuple(sorted(prune_candidates(equal, torch.Generator().manual_seed(s)).tolist())) for s in range(5)}
    assert len(halves) == 5 and tuple(range(20)) not in halves and all(len(h) == 20 for h in halves)


def test_a_sample_the_reference_cannot_load_is_never_selected():
    from attent_vision.teaching import LearnerAccess
    from attent_vision.teaching.scoring_budget import ScoringBudget

    losses = torch.arange(6.0)
    reference = torch.zeros(6, 1)
    reference[2] = float("-inf")  # sample 2 failed to load in the reference pass
    access = LearnerAccess(score_batches=lambda idx, epoch, draw=0: [{"index": idx, "loss": losses[idx],
                                                                      "reference": reference[idx]}],
                           per_task_losses=lambda batch, model=None: batch["loss" if model is None else "reference"],
                           reference_model=lambda: ("the reference model", {}))
    plan = build_plan(num_samples=6, epochs=5, strategy="soft", total_cycles=2, initial_ratio=0.8, final_ratio=0.8,
                      reselect_every_subset_epoch=True)
    for seed in range(20):
        teacher = Teacher(plan, build_strategy("soft"), seed=seed, score_source="training", access=access,
                          score=build_score("learnability"), budget=ScoringBudget(None), reweight="unbiased")
        teacher.observe(torch.arange(6), losses, torch.ones(6), step=0)
        for spec in plan.epochs[1:]:
            subset = teacher.subset_for_epoch(spec, step=spec.epoch)
            assert subset is None or 2 not in subset.tolist()
        assert teacher.table.failed().nonzero().squeeze(1).tolist() == [2]
