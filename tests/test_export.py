"""Encoder export to timm: strict loading (except the final norm), identical features, the CLI, the reverse map."""

import json

import pytest
import timm
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from attent_vision.cli.export_timm import main
from attent_vision.models import create_model
from attent_vision.models.timm_layout import multivit_to_timm, timm_to_multivit

from conftest import run_cli


def _perturbed(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random values everywhere (biases and norms too, which init leaves at 0/1), so a swapped key shows up."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return model


def _timm_tokens_like_ours(vit, images: torch.Tensor) -> torch.Tensor:
    """timm puts the cls token first; ours appends the global token: reorder timm's output to ours."""
    out = vit.forward_features(images)
    return torch.cat([out[:, 1:], out[:, :1]], dim=1)


def test_exported_encoder_loads_into_timm_strictly_except_norm_and_gives_the_same_features():
    ours = _perturbed(create_model("multivit_pico", image_size=32, patch_size=8)).eval()
    state = multivit_to_timm(ours.state_dict())
    vit = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0, img_size=32, patch_size=8,
                            embed_dim=32, depth=2, num_heads=2).eval()
    result = vit.load_state_dict(state, strict=False)
    assert sorted(result.missing_keys) == ["norm.bias", "norm.weight"]
    assert result.unexpected_keys == []
    vit.norm = torch.nn.Identity()
    images = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = ours({"rgb": images})
        got = _timm_tokens_like_ours(vit, images)
    assert got.shape == expected.shape == (3, 16 + 1, 32)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_base_encoder_matches_vit_base_patch16_224_key_for_key():
    ours = create_model("multivit_base")  # 224 px, patch 16: the released MultiMAE-B encoder's shapes
    state = multivit_to_timm(ours.state_dict())
    with torch.device("meta"):  # timm's side: shapes only, no memory or initialisation cost
        vit = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0)
    own = vit.state_dict()
    assert set(own) - set(state) == {"norm.weight", "norm.bias"}
    assert set(state) <= set(own)
    assert all(state[k].shape == own[k].shape for k in state)
    assert state["pos_embed"].shape == (1, 197, 768)


def test_pos_embed_gets_a_zero_cls_row_and_the_grid_row_major():
    ours = create_model("multivit_pico", image_size=32, patch_size=8)
    pos = ours.state_dict()["input_adapters.rgb.pos_emb"]  # 1 x D x 4 x 4
    state = multivit_to_timm(ours.state_dict())
    assert torch.equal(state["pos_embed"][0, 0], torch.zeros(32))  # the cls token has no position
    torch.testing.assert_close(state["pos_embed"][0, 1 + 1 * 4 + 2], pos[0, :, 1, 2])  # token (row 1, col 2)


def test_timm_layout_round_trips_to_ours():
    ours = _perturbed(create_model("multivit_pico", image_size=32, patch_size=8)).state_dict()
    back, dropped = timm_to_multivit(multivit_to_timm(ours))
    assert dropped == []
    assert set(back) == set(ours)
    for key in ours:
        torch.testing.assert_close(back[key], ours[key])


def test_export_cli_writes_safetensors_from_a_pretraining_checkpoint(tmp_path):
    pre = _perturbed(create_model("multimae_pico", image_size=32, patch_size=8), seed=3)
    ckpt = tmp_path / "pretrained.pth"
    torch.save({"model": pre.state_dict(),
                "config": {"name": "multimae_pico", "patch_size": 8, "image_size": 32}}, ckpt)
    out = tmp_path / "encoder.safetensors"
    proc = run_cli(["-m", "attent_vision.cli.export_timm", str(tmp_path), "--out", str(out)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "timm.create_model(" in proc.stderr
    with safe_open(str(out), "pt") as f:
        meta = f.metadata()
    kwargs = json.loads(meta["create_model_kwargs"])
    vit = timm.create_model(meta["timm_model"], pretrained=False, **kwargs).eval()
    result = vit.load_state_dict(load_file(str(out)), strict=False)
    assert sorted(result.missing_keys) == ["norm.bias", "norm.weight"] and not result.unexpected_keys
    vit.norm = torch.nn.Identity()
    encoder = create_model("multivit_pico", image_size=32, patch_size=8)
    encoder.load_state_dict({k: v for k, v in pre.state_dict().items() if k in encoder.state_dict()})
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(_timm_tokens_like_ours(vit, images), encoder.eval()({"rgb": images}),
                                   atol=1e-5, rtol=1e-5)


# Bad input goes through the CLI's main() in-process (the same code path as the console script, without paying
# for a fresh interpreter per case): exit status 2 and one error line naming the problem.
def test_export_refuses_a_mismatched_timm_model(tmp_path, caplog):
    pre = create_model("multivit_pico", image_size=32, patch_size=8)
    ckpt = tmp_path / "enc.pth"
    torch.save({"model": pre.state_dict()}, ckpt)
    out = tmp_path / "encoder.safetensors"
    assert main([str(ckpt), "--out", str(out), "--model", "vit_base_patch16_224"]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "does not fit timm 'vit_base_patch16_224'" in errors[0]
    assert "768" in errors[0]  # the shapes that disagree
    assert not out.exists()


@pytest.mark.parametrize("bad", ["missing.pth", "not_a_checkpoint.pth", "no_encoder.pth"])
def test_export_bad_checkpoint(tmp_path, bad, caplog):
    path = tmp_path / bad
    if bad == "not_a_checkpoint.pth":
        path.write_text("hello")
    elif bad == "no_encoder.pth":
        torch.save({"model": {"conv1.weight": torch.zeros(2, 2)}}, path)
    assert main([str(path), "--out", str(tmp_path / "x.safetensors")]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and str(path) in errors[0]
    assert "init_from" not in errors[0]  # the exporter has no such setting
    assert not (tmp_path / "x.safetensors").exists()
