"""Downstream metrics against values computed by hand on small arrays."""

import math

import pytest
import torch

from attent_vision.metrics import ConfusionMatrix, DepthMetrics, TopKAccuracy


def test_topk_accuracy_hand_computed_and_accumulates_over_batches():
    # Labels 0, 1, 2, 3; the label ranks 1st, 2nd, 4th and 1st in its row.
    logits = torch.tensor([
        [5.0, 1.0, 0.0, 0.0],
        [3.0, 2.0, 1.0, 0.0],
        [4.0, 3.0, 2.0, 1.0],
        [0.0, 0.0, 0.0, 9.0],
    ])
    labels = torch.tensor([0, 1, 3, 3])
    metric = TopKAccuracy((1, 2, 3))
    metric.update(logits[:3], labels[:3])  # two batches of different sizes: whole-set counts, not batch means
    metric.update(logits[3:], labels[3:])
    out = metric.compute()
    assert out["top1"] == pytest.approx(2 / 4)  # rows 0 and 3
    assert out["top2"] == pytest.approx(3 / 4)  # + row 1
    assert out["top3"] == pytest.approx(3 / 4)  # row 2's label is 4th of 4
    # k larger than the number of classes counts every sample.
    wide = TopKAccuracy((5,))
    wide.update(logits, labels)
    assert wide.compute()["top5"] == 1.0


def test_miou_and_pixel_accuracy_hand_computed_with_ignore_pixels():
    target = torch.tensor([[0, 0, 1, 1],
                           [2, 2, 255, 255]])
    pred = torch.tensor([[0, 1, 1, 1],
                         [2, 0, 0, 2]])  # the two ignored pixels are predicted wrongly: they must not count
    metric = ConfusionMatrix(num_classes=4)
    metric.update(pred.unsqueeze(0), target.unsqueeze(0))
    # Counted pixels: 6. Correct: (0,0) (0,2) (0,3) (1,0) -> pixel acc 4/6.
    # class 0: TP 1, FP 1 (pixel (1,1)), FN 1 (pixel (0,1)) -> 1/3
    # class 1: TP 2, FP 1, FN 0 -> 2/3;  class 2: TP 1, FP 0, FN 1 -> 1/2;  class 3: absent everywhere -> skipped
    out = metric.compute()
    assert out["pixel_acc"] == pytest.approx(4 / 6)
    assert out["miou"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    iou = metric.iou_per_class()
    assert math.isnan(float(iou[3]))


def test_miou_accepts_logits_and_accumulates_the_whole_set():
    metric = ConfusionMatrix(num_classes=2)
    # Batch 1: all class 0, predicted right. Batch 2: one pixel of class 1 predicted as 0.
    logits1 = torch.tensor([[[[2.0, 2.0]], [[0.0, 0.0]]]])  # B x C x H x W = 1 x 2 x 1 x 2
    metric.update(logits1, torch.tensor([[[0, 0]]]))
    metric.update(torch.tensor([[[0]]]), torch.tensor([[[1]]]))
    # Whole set: class 0 TP 2, FP 1 -> 2/3; class 1 TP 0, FN 1 -> 0 (averaging per-batch mIoUs would give 1/2).
    assert metric.compute()["miou"] == pytest.approx((2 / 3 + 0.0) / 2)
    assert metric.compute()["pixel_acc"] == pytest.approx(2 / 3)


def test_confusion_matrix_rejects_out_of_range_targets():
    metric = ConfusionMatrix(num_classes=3)
    with pytest.raises(ValueError, match="target ids"):
        metric.update(torch.zeros(1, 2, dtype=torch.long), torch.tensor([[0, 7]]))


def test_depth_metrics_hand_computed_with_invalid_pixels():
    target = torch.tensor([1.0, 2.0, 4.0, 0.0, 3.0]).view(1, 1, 1, 5)
    pred = torch.tensor([1.2, 1.0, 4.0, 5.0, 9.0]).view(1, 1, 1, 5)
    valid = torch.tensor([True, True, True, True, False]).view(1, 1, 1, 5)
    # Counted: pixels 0..2 (pixel 3 has target 0 = no measurement, pixel 4 is masked invalid).
    # ratios max(p/t, t/p): 1.2, 2.0, 1.0 -> delta1 (< 1.25): 2/3; delta2 (< 1.5625): 2/3; delta3 (< 1.953125): 2/3
    # abs rel: (0.2/1 + 1/2 + 0) / 3 = 0.7/3; rmse: sqrt((0.04 + 1 + 0) / 3)
    metric = DepthMetrics()
    metric.update(pred, target, valid)
    out = metric.compute()
    assert out["delta1"] == pytest.approx(2 / 3)
    assert out["delta2"] == pytest.approx(2 / 3)
    assert out["delta3"] == pytest.approx(2 / 3)
    assert out["abs_rel"] == pytest.approx(0.7 / 3)
    assert out["rmse"] == pytest.approx(math.sqrt(1.04 / 3))


def test_depth_standard_protocol_pools_pixels_and_multimae_protocol_averages_batches():
    # Batch A: one pixel, exact. Batch B: three pixels, each off by a factor of 2.
    a_pred, a_t = torch.tensor([2.0]).view(1, 1, 1, 1), torch.tensor([2.0]).view(1, 1, 1, 1)
    b_pred, b_t = torch.full((1, 1, 1, 3), 2.0), torch.full((1, 1, 1, 3), 1.0)
    standard, per_batch = DepthMetrics("standard"), DepthMetrics("multimae")
    for m in (standard, per_batch):
        m.update(a_pred, a_t)
        m.update(b_pred, b_t)
    assert standard.compute()["delta1"] == pytest.approx(1 / 4)  # 1 of 4 pixels
    assert standard.compute()["rmse"] == pytest.approx(math.sqrt(3 / 4))
    assert per_batch.compute()["delta1"] == pytest.approx((1.0 + 0.0) / 2)  # mean of per-batch values
    assert per_batch.compute()["rmse"] == pytest.approx((0.0 + 1.0) / 2)
    assert per_batch.compute()["abs_rel"] == pytest.approx((0.0 + 1.0) / 2)


def test_depth_metrics_count_non_positive_predictions_as_misses():
    metric = DepthMetrics()
    metric.update(torch.tensor([0.0, -1.0]).view(1, 1, 1, 2), torch.tensor([1.0, 1.0]).view(1, 1, 1, 2))
    out = metric.compute()
    assert out["delta3"] == 0.0 and math.isfinite(out["abs_rel"])


def test_metric_sums_round_trip_like_a_distributed_reduce():
    # Two "ranks" each see half of the set; summing their accumulators equals one pass over everything.
    logits = torch.randn(6, 5, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    whole, rank0, rank1 = TopKAccuracy(), TopKAccuracy(), TopKAccuracy()
    whole.update(logits, labels)
    rank0.update(logits[:3], labels[:3])
    rank1.update(logits[3:], labels[3:])
    rank0.load_sums(rank0.sums() + rank1.sums())
    assert rank0.compute() == whole.compute()
