"""Fine-tuning initialisation: heads with the release's key names, official-layout checkpoints for all three tasks,
our run folders, timm files, and the errors for checkpoints that do not fit."""

import argparse

import pytest
import torch

from attent_vision.errors import CheckpointError, ConfigError
from attent_vision.finetuning.model import build_finetune_model
from attent_vision.finetuning.suite import compose_finetune
from attent_vision.models import create_model
from attent_vision.models.heads import fill_duplicate_registrations
from attent_vision.models.timm_layout import multivit_to_timm

PICO = ["model.scratch_name=multivit_pico", "model.scratch_patch_size=8", "model.image_size=32"]


def _head_keys(model, head):
    prefix = f"output_adapters.{head}."
    return {k[len(prefix):] for k in model.state_dict() if k.startswith(prefix)}


def test_heads_carry_the_release_key_names():
    model = create_model("multivit_pico", image_size=32, patch_size=8, heads={
        "cls": dict(num_classes=50),
        "semseg": dict(num_classes=40, embed_dim=64, preds_per_patch=4, depth=2),
        "depth": dict(feature_dim=16),
    })
    assert _head_keys(model, "cls") == {"norm.weight", "norm.bias", "head.weight", "head.bias"}
    seg = {"proj_dec.weight", "proj_dec.bias", "final_layer.weight", "final_layer.bias"}
    for i in range(2):
        seg |= {f"blocks.{i}.{m}.{p}" for m in ("dwconv", "norm", "pwconv1", "pwconv2") for p in ("weight", "bias")}
    assert _head_keys(model, "semseg") == seg
    # DPT: the release registers the reassembly and projection modules under two names each; both are in the state.
    wb = ("weight", "bias")
    dpt = {f"act_{i}_postprocess.0.{p}" for i in range(1, 5) for p in wb}
    dpt |= {f"act_{i}_postprocess.1.{p}" for i in (1, 2, 4) for p in wb}
    dpt |= {f"act_postprocess.{i}.0.{p}" for i in range(4) for p in wb}
    dpt |= {f"act_postprocess.{i}.1.{p}" for i in (0, 1, 3) for p in wb}
    dpt |= {f"scratch.layer{i}_rn.weight" for i in range(1, 5)} | {f"scratch.layer_rn.{i}.weight" for i in range(4)}
    for i in range(1, 5):
        dpt |= {f"scratch.refinenet{i}.out_conv.{p}" for p in wb}
        dpt |= {f"scratch.refinenet{i}.resConfUnit{u}.conv{c}.{p}" for u in (1, 2) for c in (1, 2) for p in wb}
    dpt |= {f"head.{j}.{p}" for j in (0, 2, 4) for p in wb}
    assert _head_keys(model, "depth") == dpt
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["output_adapters.semseg.proj_dec.weight"] == (64, 32)  # Linear(D -> embed_dim)
    assert shapes["output_adapters.depth.act_1_postprocess.1.weight"] == (4, 4, 4, 4)  # ConvTranspose 4x, D/8 wide
    out = model({"rgb": torch.randn(2, 3, 48, 40)})  # a non-square size: position embeddings interpolated
    assert out["cls"].shape == (2, 50)
    assert out["semseg"].shape == (2, 40, 48, 40)
    assert out["depth"].shape == (2, 1, 48, 40)


def test_dpt_state_with_one_registration_loads_completely():
    model = create_model("multivit_pico", image_size=32, patch_size=8, heads={"depth": dict(feature_dim=16)})
    full = model.state_dict()
    # Keep act_postprocess.* / scratch.layer_rn.* only, dropping act_{i}_postprocess.* / scratch.layer{i}_rn.*.
    only_canonical = {k: torch.randn_like(v) for k, v in full.items()
                      if not any(f"act_{i}_postprocess" in k or f"layer{i}_rn" in k for i in range(1, 5))}
    assert len(only_canonical) < len(full)
    filled = fill_duplicate_registrations(only_canonical, "output_adapters.depth.")
    assert set(filled) == set(full)
    result = model.load_state_dict(filled, strict=True)
    assert not result.missing_keys
    torch.testing.assert_close(model.state_dict()["output_adapters.depth.act_2_postprocess.1.weight"],
                               only_canonical["output_adapters.depth.act_postprocess.1.1.weight"])


@pytest.fixture(scope="module")
def official_checkpoint(tmp_path_factory):
    """A file in the release's layout: a MultiMAE with rgb/depth/semseg inputs and rgb/depth/semseg/norm_rgb
    decoders, pretrained at another resolution (grid 5 x 5 instead of the fine-tuning grid), its state_dict under
    'model' with no prefix, next to a pickled argparse.Namespace, as the release files are."""
    torch.manual_seed(0)
    pre = create_model("multimae_pico", image_size=40, patch_size=8,
                       out_domains=["rgb", "depth", "semseg", "norm_rgb"])
    state = {k: v + 0.01 * torch.randn_like(v) if v.dtype.is_floating_point else v for k, v in pre.state_dict().items()}
    path = tmp_path_factory.mktemp("official") / "multimae-pico_98_rgb+-depth-semseg_multivit.pth"
    torch.save({"model": state, "args": argparse.Namespace(model="pretrain_multimae_pico", epochs=1600),
                "epoch": 1599}, path)
    return path, state


@pytest.mark.parametrize("task, head", [("imagenet_s50_cls", "cls"), ("nyuv2_seg", "semseg"),
                                        ("nyuv2_depth", "depth")])
def test_official_checkpoint_initialises_each_task(official_checkpoint, task, head):
    path, state = official_checkpoint
    task_setting = "task.num_classes=7" if head != "depth" else "task.loss=l1"
    cfg = compose_finetune(task, path, ["model.image_size=32", task_setting])
    model, record = build_finetune_model(cfg, num_classes=7 if head != "depth" else None)
    assert record["model"] == "multivit_pico" and record["patch_size"] == 8  # inferred from the tensors
    own = model.state_dict()
    # Every encoder weight and the rgb adapter come from the file; the position embedding is resized 5x5 -> 4x4.
    for key in [k for k in own if k.startswith(("encoder.", "global_tokens", "input_adapters.rgb.proj"))]:
        torch.testing.assert_close(own[key], state[key])
    assert record["resized"] == ["input_adapters.rgb.pos_emb"]
    assert own["input_adapters.rgb.pos_emb"].shape == (1, 32, 4, 4)
    # Only the new head is missing; the decoders are dropped; unused input adapters are reported, not loaded.
    assert record["missing"] and all(k.startswith(f"output_adapters.{head}.") for k in record["missing"])
    assert record["dropped_decoder_keys"] == sum(k.startswith("output_adapters.") for k in state)
    assert all(k.startswith(("input_adapters.depth.", "input_adapters.semseg.")) for k in record["unexpected"])
    out = model({"rgb": torch.randn(2, 3, 32, 32)})[head]
    assert out.shape[0] == 2 and torch.isfinite(out).all()


def test_our_run_folder_and_timm_files_initialise(tmp_path):
    pre = create_model("multimae_pico", image_size=32, patch_size=8)
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"model": pre.state_dict(), "config": {"name": "multimae_pico", "patch_size": 8}},
               run / "pretrained.pth")
    model, record = build_finetune_model(compose_finetune("imagenet_s50_cls", run, PICO), num_classes=10)
    assert record["init_from"] == str(run / "pretrained.pth")
    key = "encoder.1.mlp.fc2.weight"
    torch.testing.assert_close(model.state_dict()[key], pre.state_dict()[key])
    timm_file = tmp_path / "vit.pth"
    torch.save(multivit_to_timm(pre.state_dict()) | {"norm.weight": torch.ones(32), "norm.bias": torch.zeros(32)},
               timm_file)
    model, record = build_finetune_model(compose_finetune("imagenet_s50_cls", timm_file, PICO), num_classes=10)
    assert record["converted_from_timm"]
    torch.testing.assert_close(model.state_dict()["global_tokens"], pre.state_dict()["global_tokens"])


def test_checkpoints_that_do_not_fit_fail_naming_the_problem(tmp_path, official_checkpoint):
    path, _ = official_checkpoint
    with pytest.raises(CheckpointError, match="no such file"):
        build_finetune_model(compose_finetune("imagenet_s50_cls", tmp_path / "nope.pth", PICO), 10)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        build_finetune_model(compose_finetune("imagenet_s50_cls", junk, PICO), 10)
    resnet = tmp_path / "resnet.pth"
    torch.save({"state_dict": {"conv1.weight": torch.zeros(4, 3, 7, 7), "fc.weight": torch.zeros(10, 4)}}, resnet)
    with pytest.raises(CheckpointError, match=r"no MultiMAE/ViT encoder weights.*conv1\.weight"):
        build_finetune_model(compose_finetune("imagenet_s50_cls", resnet, PICO), 10)
    with pytest.raises(CheckpointError, match=r"model.name=multivit_nano .*width 32 and 2 blocks"):
        build_finetune_model(compose_finetune("imagenet_s50_cls", path, ["model.name=multivit_nano"]), 10)
    # Same width and depth but other head count cannot be seen in the shapes; a different width in a tensor can:
    bad = {k: v for k, v in torch.load(path, weights_only=False)["model"].items()}
    bad["encoder.0.mlp.fc1.weight"] = torch.zeros(64, 32)
    bad_path = tmp_path / "bad_mlp.pth"
    torch.save({"model": bad}, bad_path)
    with pytest.raises(CheckpointError, match=r"encoder\.0\.mlp\.fc1\.weight \(64, 32\) vs model \(128, 32\)"):
        build_finetune_model(compose_finetune("imagenet_s50_cls", bad_path, ["model.image_size=32"]), 10)
    # 64 bytes flipped inside a weights file: the CRC-32s torch.save wrote with its records catch it.
    flipped = tmp_path / "flipped.pth"
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    flipped.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"flipped\.pth is corrupt"):
        build_finetune_model(compose_finetune("imagenet_s50_cls", flipped, PICO), 10)
    empty_run = tmp_path / "empty_run"
    empty_run.mkdir()
    with pytest.raises(CheckpointError, match="folder without pretrained.pth"):
        build_finetune_model(compose_finetune("imagenet_s50_cls", empty_run, PICO), 10)


def test_unknown_task_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown fine-tuning task 'nyuv2_normals'"):
        compose_finetune("nyuv2_normals", None, [])


class NotTensors:
    """A pickled object a safe (weights-only) load refuses."""


def test_a_pickle_of_objects_is_refused_without_suggesting_an_unsafe_load(tmp_path):
    path = tmp_path / "objects.pth"
    torch.save({"model": NotTensors()}, path)
    with pytest.raises(CheckpointError) as info:
        build_finetune_model(compose_finetune("imagenet_s50_cls", path, PICO), 10)
    message = str(info.value)
    assert "not a checkpoint of tensors" in message and str(path) in message
    assert "weights_only" not in message  # torch's advice (weights_only=False) would run arbitrary code
