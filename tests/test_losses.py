"""Per-sample, per-task masked losses and the depth standardisation they rely on."""

import torch

from attent_vision.data.normalize import robust_standardize_depth
from attent_vision.models.losses import MultiMAELoss, patch_normalize

TASKS = {"rgb": "rgb", "depth": "depth", "semseg": "semseg", "norm_rgb": "rgb"}


def make_loss(**kw):
    return MultiMAELoss(tasks=TASKS, patch_size=8, strides={"semseg": 4}, **kw)


def random_batch(B=3, S=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"rgb": torch.randn(B, 3, S, S, generator=g), "depth": torch.randn(B, 1, S, S, generator=g),
            "semseg": torch.randint(0, 133, (B, S // 4, S // 4), generator=g)}


def perfect_predictions(batch, loss):
    logits = torch.full((batch["semseg"].shape[0], 133, *batch["semseg"].shape[-2:]), -30.0)
    logits.scatter_(1, batch["semseg"].unsqueeze(1), 30.0)
    return {"rgb": batch["rgb"].clone(), "depth": batch["depth"].clone(), "semseg": logits,
            "norm_rgb": loss.target_for("norm_rgb", batch).clone()}


def test_losses_count_only_masked_positions():
    loss = make_loss()
    batch = random_batch()
    masks = {m: torch.zeros(3, 16, dtype=torch.bool) for m in ("rgb", "depth", "semseg")}
    masks["rgb"][:, :8] = True  # the first two token rows of rgb are hidden
    masks["depth"][:, 4] = True
    masks["semseg"][:, 15] = True
    preds = perfect_predictions(batch, loss)
    # Wreck every *visible* position: the loss must not notice.
    visible_rgb = ~masks["rgb"].view(3, 1, 4, 4).repeat_interleave(8, 2).repeat_interleave(8, 3)
    preds["rgb"] = torch.where(visible_rgb, preds["rgb"] + 100.0, preds["rgb"])
    preds["norm_rgb"] = torch.where(visible_rgb, preds["norm_rgb"] - 100.0, preds["norm_rgb"])
    out = loss(preds, batch, masks)
    for task in TASKS:
        assert torch.allclose(out[task].per_sample, torch.zeros(3), atol=1e-4), task
        assert out[task].valid.all()
    # Now wreck one hidden rgb patch of sample 1: only its rgb loss moves, by the known amount.
    preds["rgb"][1, :, 0:8, 0:8] += 2.0
    out = loss(preds, batch, masks)
    assert torch.allclose(out["rgb"].per_sample, torch.tensor([0.0, 4.0 / 8, 0.0]), atol=1e-4)  # 1 of 8 hidden patches


def test_per_sample_values_match_a_hand_computation():
    loss = make_loss()
    batch = random_batch(B=2, seed=1)
    preds = {k: v + 0.5 * torch.randn_like(v) if v.is_floating_point() else v
             for k, v in perfect_predictions(batch, loss).items()}
    masks = {m: torch.rand(2, 16, generator=torch.Generator().manual_seed(i)) > 0.5
             for i, m in enumerate(("rgb", "depth", "semseg"))}
    out = loss(preds, batch, masks)
    for b in range(2):
        pix = masks["depth"][b].view(4, 4).repeat_interleave(8, 0).repeat_interleave(8, 1)
        l1 = (preds["depth"][b, 0] - batch["depth"][b, 0]).abs()
        assert torch.allclose(out["depth"].per_sample[b], l1[pix].mean(), atol=1e-5)
        pix_s = masks["semseg"][b].view(4, 4).repeat_interleave(2, 0).repeat_interleave(2, 1)
        ce = torch.nn.functional.cross_entropy(preds["semseg"][b : b + 1], batch["semseg"][b : b + 1],
                                               reduction="none")[0]
        assert torch.allclose(out["semseg"].per_sample[b], ce[pix_s].mean(), atol=1e-5)
    objective = loss.objective(out)
    assert objective.shape == (2,)
    assert torch.allclose(objective, sum(out[t].per_sample for t in TASKS))


def test_ignored_semseg_pixels_do_not_count_and_weights_apply():
    loss = make_loss(weights={"depth": 3.0})
    batch = random_batch(B=2)
    batch["semseg"][0] = 255  # sample 0 is entirely void
    preds = perfect_predictions({**batch, "semseg": batch["semseg"].clamp(max=132)}, loss)
    preds["depth"] = preds["depth"] + 1.0
    masks = {m: torch.ones(2, 16, dtype=torch.bool) for m in ("rgb", "depth", "semseg")}
    out = loss(preds, batch, masks)
    assert out["semseg"].valid.tolist() == [False, True]
    assert out["semseg"].per_sample[0] == 0
    assert torch.allclose(loss.objective(out), torch.tensor([3.0, 3.0]), atol=1e-4)


def test_norm_rgb_target_is_per_patch_standardised():
    image = torch.randn(1, 3, 16, 16) * 4 + 2
    normed = patch_normalize(image, 8)
    patch = image[0, :, 8:16, 0:8]
    expected = (patch - patch.mean()) / (patch.var() + 1e-6).sqrt()  # unbiased variance over 8x8x3
    assert torch.allclose(normed[0, :, 8:16, 0:8], expected, atol=1e-5)


def test_robust_depth_standardisation_uses_the_10_to_90_percent_ranks():
    depth = torch.arange(1.0, 101.0).view(1, 10, 10)
    depth[0, 0, 0] = 1e6  # an outlier must not move the statistics
    kept = torch.arange(12.0, 92.0)  # sorted values are 2..100 then the outlier; ranks 10..89 hold 12..91
    out = robust_standardize_depth(depth)
    expected = (depth - kept.mean()) / torch.sqrt(kept.var() + 1e-6)
    assert torch.allclose(out, expected)
