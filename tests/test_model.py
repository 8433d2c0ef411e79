"""The MultiMAE model: shapes, masking, explicit masks, official state_dict layout, checkpoint round trip."""

import argparse

import pytest
import torch

from attent_vision.models import SIZES, create_model
from attent_vision.models.convert import load_pretrained
from attent_vision.models.pos_embed import build_2d_sincos_pos_embed


def batch_for(model, batch_size=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = model.image_size
    return {
        "rgb": torch.randn(batch_size, 3, s, s, generator=g),
        "depth": torch.randn(batch_size, 1, s, s, generator=g),
        "semseg": torch.randint(0, 133, (batch_size, s // 4, s // 4), generator=g),
    }


def official_base_keys() -> dict[str, tuple]:
    """The 351 keys and shapes of the released MultiMAE-B (rgb/depth/semseg in; rgb/depth/semseg/norm_rgb out),
    written out from the reference description, independently of our code."""
    D, d = 768, 256
    keys = {"global_tokens": (1, 1, D)}
    for m in ("rgb", "depth", "semseg"):
        keys[f"input_adapters.{m}.pos_emb"] = (1, D, 14, 14)
    keys["input_adapters.rgb.proj.weight"] = (D, 3, 16, 16)
    keys["input_adapters.depth.proj.weight"] = (D, 1, 16, 16)
    keys["input_adapters.semseg.class_emb.weight"] = (133, 64)
    keys["input_adapters.semseg.proj.weight"] = (D, 64, 4, 4)
    for m in ("rgb", "depth", "semseg"):
        keys[f"input_adapters.{m}.proj.bias"] = (D,)
    out_channels = {"rgb": 768, "norm_rgb": 768, "depth": 256, "semseg": 2128}
    for t, c in out_channels.items():
        p = f"output_adapters.{t}."
        keys[p + "mask_token"] = (1, 1, d)
        keys[p + "pos_emb"] = (1, d, 14, 14)
        for m in ("rgb", "depth", "semseg"):
            keys[p + f"task_embeddings.{m}"] = (1, 1, d)
        keys[p + "decoder.q.weight"], keys[p + "decoder.q.bias"] = (d, d), (d,)
        keys[p + "decoder.kv.weight"], keys[p + "decoder.kv.bias"] = (2 * d, d), (2 * d,)
        keys[p + "decoder.proj.weight"], keys[p + "decoder.proj.bias"] = (d, d), (d,)
        for n in ("context_norm", "query_norm", "out_norm"):
            keys[p + f"{n}.weight"], keys[p + f"{n}.bias"] = (d,), (d,)
        keys[p + "mlp.fc1.weight"], keys[p + "mlp.fc1.bias"] = (4 * d, d), (4 * d,)
        keys[p + "mlp.fc2.weight"], keys[p + "mlp.fc2.bias"] = (d, 4 * d), (d,)
        for i in (0, 1):
            b = p + f"decoder_transformer.{i}."
            for n in ("norm1", "norm2"):
                keys[b + f"{n}.weight"], keys[b + f"{n}.bias"] = (d,), (d,)
            keys[b + "attn.qkv.weight"], keys[b + "attn.qkv.bias"] = (3 * d, d), (3 * d,)
            keys[b + "attn.proj.weight"], keys[b + "attn.proj.bias"] = (d, d), (d,)
            keys[b + "mlp.fc1.weight"], keys[b + "mlp.fc1.bias"] = (4 * d, d), (4 * d,)
            keys[b + "mlp.fc2.weight"], keys[b + "mlp.fc2.bias"] = (d, 4 * d), (d,)
        keys[p + "out_proj.weight"], keys[p + "out_proj.bias"] = (c, d), (c,)
        keys[p + "proj_context.weight"], keys[p + "proj_context.bias"] = (d, D), (d,)
    for i in range(12):
        b = f"encoder.{i}."
        for n in ("norm1", "norm2"):
            keys[b + f"{n}.weight"], keys[b + f"{n}.bias"] = (D,), (D,)
        keys[b + "attn.qkv.weight"], keys[b + "attn.qkv.bias"] = (3 * D, D), (3 * D,)
        keys[b + "attn.proj.weight"], keys[b + "attn.proj.bias"] = (D, D), (D,)
        keys[b + "mlp.fc1.weight"], keys[b + "mlp.fc1.bias"] = (4 * D, D), (4 * D,)
        keys[b + "mlp.fc2.weight"], keys[b + "mlp.fc2.bias"] = (D, 4 * D), (D,)
    return keys


@pytest.fixture(scope="module")
def base_model():
    return create_model("multimae_base", out_domains=["rgb", "depth", "semseg", "norm_rgb"])


def test_base_state_dict_has_exactly_the_official_keys_and_shapes(base_model):
    expected = official_base_keys()
    assert len(expected) == 351
    ours = {k: tuple(v.shape) for k, v in base_model.state_dict().items()}
    assert set(ours) == set(expected), (sorted(set(ours) - set(expected))[:5], sorted(set(expected) - set(ours))[:5])
    assert ours == expected
    # Position embeddings are stored (as in the release) but frozen.
    assert not base_model.input_adapters["rgb"].pos_emb.requires_grad


@pytest.mark.parametrize("size", list(SIZES))
def test_every_size_builds_and_predicts_every_modality(size):
    # Small images keep the published sizes cheap; the architecture is the same at 224.
    model = create_model(f"multimae_{size}", image_size=32, patch_size=16, num_encoded_tokens=4)
    spec = SIZES[size]
    assert model.dim == spec.dim and len(model.encoder) == spec.depth
    x = batch_for(model)
    with torch.no_grad():
        preds, masks = model(x)
    assert preds["rgb"].shape == (2, 3, 32, 32)
    assert preds["depth"].shape == (2, 1, 32, 32)
    assert preds["semseg"].shape == (2, 133, 8, 8)
    assert {k: tuple(v.shape) for k, v in masks.items()} == {m: (2, 4) for m in ("rgb", "depth", "semseg")}


def test_reference_resolution_shapes():
    model = create_model("multimae_pico", image_size=224, patch_size=16,
                         out_domains=["rgb", "depth", "semseg", "norm_rgb"])
    assert model.num_encoded_tokens == 98  # one sixth of 3 x 196, as in the release
    with torch.no_grad():
        preds, masks = model(batch_for(model))
    assert preds["rgb"].shape == (2, 3, 224, 224) and preds["norm_rgb"].shape == (2, 3, 224, 224)
    assert preds["depth"].shape == (2, 1, 224, 224) and preds["semseg"].shape == (2, 133, 56, 56)
    assert all(m.shape == (2, 196) for m in masks.values())


@pytest.mark.parametrize("uniform", [False, True])
def test_exactly_num_encoded_tokens_are_visible(uniform):
    model = create_model("multimae_pico", image_size=64, patch_size=8, num_encoded_tokens=37,
                         sample_tasks_uniformly=uniform)
    for seed in range(5):
        masks = model.mask_spec.sample(256, torch.Generator().manual_seed(seed))
        visible = sum((~m).sum(1) for m in masks.values())
        assert (visible == 37).all()
        per_task = torch.stack([(~m).sum(1) for m in masks.values()], 1)
        assert (per_task <= 64).all()
    if uniform:  # some samples must draw from a strict subset of the modalities
        assert ((per_task == 0).sum(1) > 0).any()


def test_budget_larger_than_one_modality_is_split_without_overflow():
    model = create_model("multimae_pico", image_size=32, patch_size=8, num_encoded_tokens=40)  # 16 tokens each
    masks = model.mask_spec.sample(500, torch.Generator().manual_seed(1))
    per_task = torch.stack([(~m).sum(1) for m in masks.values()], 1)
    assert (per_task.sum(1) == 40).all() and (per_task <= 16).all()


def test_explicit_masks_are_honoured_and_hide_tokens():
    torch.manual_seed(0)
    model = create_model("multimae_pico", image_size=32, patch_size=8).eval()
    x = batch_for(model)
    masks = model.mask_spec.sample(2, torch.Generator().manual_seed(3))
    with torch.no_grad():
        preds, used = model(x, task_masks=masks)
    assert all(torch.equal(used[k], masks[k]) for k in masks)
    # Changing the pixels of a hidden rgb patch must not change any prediction: the encoder never saw it.
    hidden = int(masks["rgb"][0].nonzero()[0])
    row, col = divmod(hidden, 4)
    x2 = {k: v.clone() for k, v in x.items()}
    x2["rgb"][0, :, row * 8 : (row + 1) * 8, col * 8 : (col + 1) * 8] += 5.0
    with torch.no_grad():
        preds2, _ = model(x2, task_masks=masks)
    assert all(torch.allclose(preds[k], preds2[k], atol=1e-6) for k in preds)
    # ... while changing a visible patch does.
    shown = int((~masks["rgb"][0]).nonzero()[0]) if (~masks["rgb"][0]).any() else None
    if shown is not None:
        row, col = divmod(shown, 4)
        x3 = {k: v.clone() for k, v in x.items()}
        x3["rgb"][0, :, row * 8 : (row + 1) * 8, col * 8 : (col + 1) * 8] += 5.0
        with torch.no_grad():
            preds3, _ = model(x3, task_masks=masks)
        assert not torch.allclose(preds["depth"][0], preds3["depth"][0])


def test_explicit_masks_with_unequal_visible_counts_are_rejected():
    model = create_model("multimae_pico", image_size=32, patch_size=8)
    masks = model.mask_spec.sample(2, torch.Generator().manual_seed(0))
    masks["rgb"][0] = True
    masks["rgb"][1] = False
    with pytest.raises(ValueError, match="same number of visible tokens"):
        model(batch_for(model), task_masks=masks)


def test_rgb_only_model_is_plain_mae():
    model = create_model("multimae_pico", image_size=32, patch_size=8, in_domains=["rgb"], out_domains=["rgb"])
    assert list(model.input_adapters) == ["rgb"] and list(model.output_adapters) == ["rgb"]
    preds, masks = model({"rgb": torch.randn(3, 3, 32, 32)})
    assert preds["rgb"].shape == (3, 3, 32, 32) and ((~masks["rgb"]).sum(1) == model.num_encoded_tokens).all()


def test_sincos_position_embedding_values():
    emb = build_2d_sincos_pos_embed(3, 3, 8)  # quarter = 2 frequencies: 1 and 1/100
    assert emb.shape == (1, 8, 3, 3)
    # Token (row 2, col 1) of the release's convention: the first sin/cos pair follows the row index.
    token = emb[0, :, 2, 1]
    # (sin, cos) of the first axis (2) then of the second axis (1), at frequencies 1 and 1/100.
    expected = torch.tensor([
        torch.sin(torch.tensor(2.0)), torch.sin(torch.tensor(0.02)),
        torch.cos(torch.tensor(2.0)), torch.cos(torch.tensor(0.02)),
        torch.sin(torch.tensor(1.0)), torch.sin(torch.tensor(0.01)),
        torch.cos(torch.tensor(1.0)), torch.cos(torch.tensor(0.01)),
    ])
    assert torch.allclose(token, expected, atol=1e-6)


def test_official_checkpoint_file_round_trips(tmp_path, base_model):
    # An official release file: a dict with 'model' and a pickled argparse.Namespace.
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in base_model.state_dict().items()}
    path = tmp_path / "multimae-b_98_rgb+-depth-semseg_1600e.pth"
    torch.save({"model": state, "args": argparse.Namespace(model="multimae_base", epochs=1600), "epoch": 1599}, path)
    fresh = create_model("multimae_base", out_domains=["rgb", "depth", "semseg", "norm_rgb"])
    report = load_pretrained(fresh, path)
    assert report.missing == [] and report.unexpected == []
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in state.items())


def test_encoder_only_checkpoint_reports_missing_decoders(tmp_path):
    model = create_model("multimae_pico", image_size=32, patch_size=8)
    encoder_only = {k: v for k, v in model.state_dict().items() if not k.startswith("output_adapters")}
    encoder_only["output_adapters.cls.head.weight"] = torch.zeros(3, 3)
    path = tmp_path / "multivit.pth"
    torch.save({"model": encoder_only}, path)
    report = load_pretrained(create_model("multimae_pico", image_size=32, patch_size=8), path)
    assert report.unexpected == ["output_adapters.cls.head.weight"]
    assert report.missing and all(k.startswith("output_adapters.") for k in report.missing)


def test_position_embeddings_of_another_resolution_are_resized(tmp_path):
    big = create_model("multimae_pico", image_size=64, patch_size=8)
    path = tmp_path / "big.pth"
    torch.save({"model": big.state_dict()}, path)
    small = create_model("multimae_pico", image_size=32, patch_size=8)
    report = load_pretrained(small, path)
    assert "input_adapters.rgb.pos_emb" in report.resized and report.missing == []
