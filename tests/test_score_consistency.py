"""Scores that repeat (issue 22): K draws, shared masks, top-patch scores, normalised free scores, and the
repeatability check every selection records."""

import pytest
import torch

from attent_vision.data.pretrain.views import PretrainView
from attent_vision.models.losses import MultiMAELoss, top_patches_mean
from attent_vision.models.masking import MaskSpec
from attent_vision.pretraining.trainer import pretrain
from attent_vision.teaching import Teacher
from attent_vision.teaching.plan import build_plan
from attent_vision.teaching.repeatability import agreement, spearman, top_overlap
from attent_vision.teaching.strategies import STRATEGIES

from conftest import compose_train, run_in_process

SMOKE = ["debug=smoke"]


def test_top_patch_mean_averages_the_highest_loss_hidden_patches():
    pixels = torch.arange(16.0).reshape(1, 4, 4)  # 2 x 2 patches of side 2: means 2.5, 4.5, 10.5, 12.5
    everywhere = torch.ones(1, 4, 4)
    assert top_patches_mean(pixels, everywhere, 2, 0.25).item() == 12.5
    assert top_patches_mean(pixels, everywhere, 2, 1.0).item() == pixels.mean().item()
    bottom_hidden = everywhere.clone()
    bottom_hidden[0, :2] = 0  # only the bottom two patches are scored
    assert top_patches_mean(pixels, bottom_hidden, 2, 0.5).item() == 12.5
    assert top_patches_mean(pixels, torch.zeros(1, 4, 4), 2, 0.5).item() == 0.0


def test_the_loss_keeps_its_objective_and_adds_the_top_patch_score():
    torch.manual_seed(0)
    preds = {"rgb": torch.randn(3, 3, 16, 16)}
    batch = {"rgb": torch.randn(3, 3, 16, 16)}
    masks = {"rgb": torch.rand(3, 16) < 0.5}  # 4 x 4 patches of 4 px, about half hidden
    plain = MultiMAELoss(tasks={"rgb": "rgb"}, patch_size=4)(preds, batch, masks)["rgb"]
    top = MultiMAELoss(tasks={"rgb": "rgb"}, patch_size=4, score_top_q=0.25)(preds, batch, masks)["rgb"]
    everything = MultiMAELoss(tasks={"rgb": "rgb"}, patch_size=4, score_top_q=1.0)(preds, batch, masks)["rgb"]
    assert torch.equal(plain.score, plain.per_sample) and torch.equal(top.per_sample, plain.per_sample)
    assert bool((top.score > plain.per_sample).all())  # the worst quarter of the hidden patches
    assert torch.allclose(everything.score, plain.per_sample)  # whole patches: the mean of means is the mean
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        MultiMAELoss(tasks={"rgb": "rgb"}, patch_size=4, score_top_q=0.0)


def test_rank_agreement_numbers():
    a = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    assert spearman(a, a * 10) == pytest.approx(1.0) and spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(a, torch.tensor([1.0, 1.0, 2.0, 2.0, 3.0])) == pytest.approx(9 / 90 ** 0.5)  # ties averaged
    assert top_overlap(torch.arange(10.0), torch.arange(10.0)) == 1.0
    assert top_overlap(torch.arange(10.0), -torch.arange(10.0)) == 0.0
    record = agreement(torch.tensor([1.0, float("nan"), 3.0, 4.0]), torch.tensor([2.0, 5.0, 6.0, 8.0]))
    assert record["samples"] == 3 and record["spearman"] == 1.0  # the unscored sample is left out


def test_shared_masks_are_one_pattern_per_epoch_and_draw_and_draw_zero_is_the_single_draw(tiny_folder):
    spec = MaskSpec({"rgb": 16}, num_encoded_tokens=4)
    own = PretrainView(tiny_folder, image_size=16, augment=False, seed=0, mask_spec=spec)
    shared = PretrainView(tiny_folder, image_size=16, augment=False, seed=0, mask_spec=spec, shared_masks=True)
    mask = lambda view, key: view[key]["masks"]["rgb"]  # noqa: E731
    assert torch.equal(mask(own, (0, 0, 1.0)), mask(own, (0, 0, 1.0, 0)))  # K=1 scores exactly as before
    assert not torch.equal(mask(own, (0, 0, 1.0, 0)), mask(own, (0, 0, 1.0, 1)))  # another draw, other masks
    assert not torch.equal(mask(own, (0, 0, 1.0)), mask(own, (1, 0, 1.0)))  # own masks differ between samples
    assert torch.equal(mask(shared, (0, 3, 1.0, 1)), mask(shared, (1, 3, 1.0, 1)))  # shared: one pattern for all
    assert not torch.equal(mask(shared, (0, 3, 1.0, 1)), mask(shared, (0, 4, 1.0, 1)))  # ... new per selection
    assert not torch.equal(mask(shared, (0, 3, 1.0, 1)), mask(shared, (0, 3, 1.0, 2)))  # ... and per draw


@pytest.fixture
def tiny_folder(tmp_path):
    from attent_vision.data.pretrain.folder import MultiModalFolder

    from conftest import make_folder_dataset

    make_folder_dataset(tmp_path, size=16, count=3, val_count=1)
    return MultiModalFolder(tmp_path, "train", ["rgb"])


def test_free_scores_are_divided_by_the_loss_level_of_their_step():
    """The level is an EMA over optimizer steps of the whole step's batch (all its micro-batches; all ranks), fed by
    full-data epochs only; a score is divided by the level at the step it was taken."""
    plan = build_plan(num_samples=8, epochs=3, strategy="soft", total_cycles=2, initial_interval=1, max_interval=1)
    teacher = Teacher(plan, STRATEGIES["soft"](), seed=0, score_source="training", normalize_free_scores=True)
    assert teacher.subset_for_epoch(plan.epochs[0], step=0) is None  # a full epoch: its batches feed the level
    teacher.observe(torch.arange(4), torch.tensor([[2.0], [2.0], [4.0], [4.0]]), torch.ones(4), step=0)
    teacher.observe(torch.arange(4, 6), torch.tensor([[3.0], [3.0]]), torch.ones(2), step=0)  # same step
    teacher.observe(torch.arange(6, 8), torch.tensor([[1.0], [1.0]]), torch.ones(2), step=1)  # folds step 0
    assert teacher.loss_level.levels[:, 0].tolist()[1:] == [3.0]  # the mean of step 0's six samples
    assert teacher.scores()[:6].tolist() == pytest.approx([2 / 3, 2 / 3, 4 / 3, 4 / 3, 1.0, 1.0])
    teacher.loss_level.fold()  # step 1: 0.9 x 3 + 0.1 x 1
    assert teacher.scores()[6:].tolist() == pytest.approx([1 / 2.8, 1 / 2.8])
    teacher.in_full_epoch = False  # a subset's batches are the selected samples: they leave the level alone
    teacher.observe(torch.arange(2), torch.tensor([[9.0], [9.0]]), torch.ones(2), step=2)
    teacher.loss_level.fold()
    assert teacher.loss_level.levels[:, 0].tolist()[1:] == pytest.approx([3.0, 2.8, 2.8])
    assert teacher.scores()[0].item() == pytest.approx(9 / 2.8) and teacher.table.current[0, 0].item() == 9.0
    other = Teacher(plan, STRATEGIES["soft"](), seed=0, score_source="training", normalize_free_scores=True)
    other.load_state_dict(teacher.state_dict())
    same = lambda a, b: torch.equal(a.nan_to_num(-1.0), b.nan_to_num(-1.0))  # noqa: E731  (row 0 is NaN)
    assert same(other.loss_level.levels, teacher.loss_level.levels)  # it resumes with its levels
    assert same(other.scores(), teacher.scores())


def first_selection_repeatability(tmp_path, name, overrides):
    # Stopped right after the first selection (epoch 1's first step): nothing after it is needed
    results = pretrain(compose_train([*SMOKE, "teaching.repeatability_samples=96", "trainer.stop_after_steps=7",
                                      "probe=none", *overrides]), tmp_path / name)
    return results["selections"][0]["repeatability"]


def test_k_draws_raise_the_repeatability_of_the_scores_of_one_trained_model(tmp_path):
    """Up to the first selection, runs that differ only in K are the same run: the check at that selection scores
    the same trained model, the same 96 samples, with K draws against K others."""
    single = first_selection_repeatability(tmp_path, "k1", [])
    four = first_selection_repeatability(tmp_path, "k4", ["teaching.score_draws=4"])
    assert single["samples"] == four["samples"] == 96 and four["draws"] == 4
    assert four["spearman"] > single["spearman"] + 0.05, (single, four)
    assert four["top_overlap"] >= single["top_overlap"]


@pytest.mark.parametrize("overrides,key", [
    (["teaching.score_draws=0"], "teaching.score_draws"),
    (["teaching.score_top_q=0"], "teaching.score_top_q"),
    (["teaching.score_top_q=1.5"], "teaching.score_top_q"),
    (["teaching.normalize_free_scores=true"], "teaching.normalize_free_scores"),  # pass scores: nothing to normalise
    (["teaching.shared_mask=true", "teaching.score_source=training"], "teaching.shared_mask"),
])
def test_bad_score_options_are_one_line_each(overrides, key):
    result = run_in_process(["train.py", *SMOKE, *overrides])
    assert result.returncode != 0
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and key in lines[0] and "Traceback" not in result.stderr, result.stderr
