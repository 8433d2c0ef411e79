"""Checks that need a CUDA device (run with `pytest -m gpu`; CI deselects them): bf16 training learns, the loop
runs on the GPU end to end, and steps do not synchronise with the host."""

import pytest
import torch

from attent_vision.engine.runtime import autocast
from attent_vision.models import MultiMAELoss, create_model
from attent_vision.pretraining.trainer import pretrain

from conftest import compose_train

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def cuda():
    if not torch.cuda.is_available():
        pytest.fail("these tests need a CUDA device; run them with -m gpu on a GPU machine only")
    return torch.device("cuda")


def test_bf16_training_steps_lower_the_loss(cuda):
    torch.manual_seed(0)
    model = create_model("multimae_tiny", image_size=64, patch_size=16).to(cuda)
    loss_fn = MultiMAELoss(tasks={"rgb": "rgb", "depth": "depth", "semseg": "semseg"}, patch_size=16,
                           strides={"semseg": 4})
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, fused=True)
    x = {"rgb": torch.randn(32, 3, 64, 64, device=cuda), "depth": torch.randn(32, 1, 64, 64, device=cuda),
         "semseg": torch.randint(0, 133, (32, 16, 16), device=cuda)}
    masks = model.mask_spec.sample(32, torch.Generator().manual_seed(0))
    losses = []
    for _ in range(30):
        with autocast("bf16", cuda):
            preds, used = model(x, task_masks=masks)
        loss = loss_fn.objective(loss_fn(preds, x, used)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < 0.8 * losses[0]


def test_pretraining_runs_on_the_gpu(cuda, tmp_path):
    results = pretrain(compose_train(["debug=smoke", "trainer.device=cuda"]), tmp_path)
    assert results["status"] == "completed" and results["setting"]["precision"] == "bf16"
    assert results["final"]["val_loss"] < results["initial"]["val_loss"]


def test_training_step_does_not_synchronise_with_the_host(cuda):
    """A forward/backward with CPU masks (as the loader gives them) must not wait for the GPU."""
    model = create_model("multimae_pico", image_size=32, patch_size=8).to(cuda)
    loss_fn = MultiMAELoss(tasks={"rgb": "rgb", "depth": "depth", "semseg": "semseg"}, patch_size=8,
                           strides={"semseg": 4})
    x = {"rgb": torch.randn(8, 3, 32, 32, device=cuda), "depth": torch.randn(8, 1, 32, 32, device=cuda),
         "semseg": torch.randint(0, 133, (8, 8, 8), device=cuda)}
    # Pinned, as the data loader delivers them with pin_memory=True.
    masks = {k: v.pin_memory() for k, v in model.mask_spec.sample(8, torch.Generator().manual_seed(0)).items()}
    torch.cuda.set_sync_debug_mode("error")
    try:
        preds, used = model(x, task_masks=masks)
        loss_fn.objective(loss_fn(preds, x, used)).mean().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
