"""The Python API's edges: create_model defaults equal the model configs, input-shape mistakes are named, and
load_pretrained converts timm exports (and refuses files that fit nothing)."""

import inspect

import pytest
import timm
import torch
from omegaconf import OmegaConf

from attent_vision.cli.export_timm import export
from attent_vision.conf import TRAIN_CONF_DIR
from attent_vision.errors import CheckpointError
from attent_vision.models import create_model, multimae
from attent_vision.models.convert import load_pretrained
from attent_vision.pretraining.builders import build_pretrain_model

MODEL_YAMLS = sorted((TRAIN_CONF_DIR / "model").glob("*.yaml"))


def test_every_model_config_is_found():
    assert {p.stem for p in MODEL_YAMLS} >= {"multimae_pico", "multimae_nano", "multimae_base"}


def _model_arguments(monkeypatch, build) -> dict:
    """Every constructor argument of the MultiMAE that ``build()`` creates, defaults of the signature included.
    The class is swapped for a recorder, so that base and large cost nothing to "build"."""
    seen = {}

    class Recorder:
        def __init__(self, **kwargs):
            seen.update(kwargs)

    defaults = {}
    for cls in (multimae.MultiViTEncoder, multimae.MultiMAE):
        defaults.update({n: p.default for n, p in inspect.signature(cls.__init__).parameters.items()
                         if p.default is not p.empty})
    with monkeypatch.context() as patch:
        patch.setattr(multimae, "MultiMAE", Recorder)
        build()
    return defaults | seen


@pytest.mark.parametrize("path", MODEL_YAMLS, ids=lambda p: p.stem)
def test_create_model_defaults_equal_the_model_config(path, monkeypatch):
    cfg = OmegaConf.load(path)
    default = _model_arguments(monkeypatch, lambda: create_model(cfg.name))
    # The training run's code path: every key of the config group, passed through.
    configured = _model_arguments(monkeypatch, lambda: build_pretrain_model(OmegaConf.create({"model": cfg})))
    assert (default["image_size"], default["patch_size"]) == (cfg.image_size, cfg.patch_size)
    assert default == configured


def test_pico_builds_at_its_config_size():
    model = create_model("multimae_pico")
    assert (model.image_size, model.patch_size) == (32, 8) and model.tokens_per_task() == {"rgb": 16, "depth": 16,
                                                                                         "semseg": 16}


# ----------------------------------------------------------------------------------------- input shape mistakes
def _batch(size=64, semseg_size=16, B=2):
    return {"rgb": torch.randn(B, 3, size, size), "depth": torch.randn(B, 1, size, size),
            "semseg": torch.randint(0, 133, (B, semseg_size, semseg_size))}


@pytest.fixture(scope="module")
def pico64():
    return create_model("multimae_pico", image_size=64).eval()


def test_full_resolution_semseg_is_named_with_the_size_it_needs(pico64):
    with pytest.raises(ValueError, match=r"semseg must be given at image_size/4 \(16x16 for 64x64 images\), got "
                                         r"64x64; downsample it with nearest interpolation"):
        pico64(_batch(semseg_size=64))


@pytest.mark.parametrize("change, message", [
    (lambda b: b.update(semseg=b["semseg"][:, None]), r"semseg must be B x H/4 x W/4 class ids \(16x16 for 64x64 "
                                                      r"images\), got shape \(2, 1, 16, 16\); drop the channel"),
    (lambda b: b.update(semseg=b["semseg"].float()), r"semseg must hold class ids as torch.long, got torch.float32"),
    (lambda b: b.update(semseg=b["semseg"][:, :8, :8]), r"semseg must be B x H/4 x W/4 class ids \(16x16 for 64x64 "
                                                        r"images\), got 8x8"),
    (lambda b: b.update(rgb=b["rgb"][0]), r"rgb must be a B x 3 x H x W float tensor, got shape \(3, 64, 64\); add "
                                          r"the batch dimension"),
    (lambda b: b.update(rgb=b["rgb"].permute(0, 2, 3, 1)), r"rgb must be a B x 3 x H x W .*; channels-last"),
    (lambda b: b.update(rgb=b["rgb"].to(torch.uint8)), r"rgb must be a B x 3 x H x W float tensor, got torch.uint8"),
    (lambda b: b.update(depth=b["depth"][:, 0]), r"depth must be a B x 1 x H x W float tensor, got shape "
                                                 r"\(2, 64, 64\); add the channel dimension"),
    (lambda b: b.update(depth=b["depth"][..., :32, :32]), r"depth is 32x32 but the batch's images are 64x64"),
    (lambda b: b.update(_batch(size=60, semseg_size=15)), r"rgb is 60x60, not a multiple of the patch size 8"),
    (lambda b: b.update(_batch(size=32, semseg_size=8)), r"random masks are drawn for the model's image_size=64, but "
                                                         r"the batch's images are 32x32"),
])
def test_input_shape_mistakes_name_the_modality_and_the_shape_it_needs(pico64, change, message):
    batch = _batch()
    change(batch)
    with pytest.raises(ValueError, match=message):
        pico64(batch)


def test_fine_tuning_encoder_still_reads_other_resolutions():
    encoder = create_model("multivit_pico", in_domains=["rgb", "depth"])  # built for 32 px
    tokens = encoder({"rgb": torch.randn(1, 3, 48, 64), "depth": torch.randn(1, 1, 48, 64)})
    assert tokens.shape == (1, 2 * 6 * 8 + 1, 32)


# ---------------------------------------------------------------------------------------------- timm exports
def _perturbed_pico(seed: int = 0) -> torch.nn.Module:
    """A pretraining model with random values everywhere (biases and norms too), so a swapped key shows up."""
    model = create_model("multimae_pico")
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(pretraining model, its encoder exported by attent-export-timm's code path to a safetensors file)."""
    folder = tmp_path_factory.mktemp("export")
    pre = _perturbed_pico()
    torch.save({"model": pre.state_dict(), "config": {"name": "multimae_pico", "patch_size": 8, "image_size": 32}},
               folder / "pretrained.pth")
    export(folder, folder / "encoder.safetensors")
    return pre, folder / "encoder.safetensors"


def test_load_pretrained_converts_a_timm_export_into_a_fine_tuning_encoder(exported):
    pre, path = exported
    encoder = create_model("multivit_pico")
    report = load_pretrained(encoder, path)
    assert report.converted_from_timm and report.missing == [] and report.unexpected == []
    assert "converted from the timm ViT layout" in report.summary()
    own = encoder.state_dict()
    assert own and all(torch.equal(v, pre.state_dict()[k]) for k, v in own.items())


def test_load_pretrained_converts_a_timm_export_into_the_pretraining_encoder(exported):
    pre, path = exported
    fresh = create_model("multimae_pico")
    report = load_pretrained(fresh, path)
    loaded = [k for k in fresh.state_dict() if k not in report.missing]
    assert loaded and all(k.startswith(("encoder.", "input_adapters.rgb.")) or k == "global_tokens" for k in loaded)
    assert all(torch.equal(fresh.state_dict()[k], pre.state_dict()[k]) for k in loaded)
    assert "input_adapters.depth.proj.weight" in report.missing  # not in an rgb ViT: trained from scratch


def test_timm_keys_we_have_no_place_for_are_reported_unexpected(tmp_path):
    vit = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0, img_size=32, patch_size=8,
                            embed_dim=32, depth=2, num_heads=2)
    path = tmp_path / "vit.pth"
    torch.save(vit.state_dict(), path)
    encoder = create_model("multivit_pico")
    report = load_pretrained(encoder, path)
    assert report.missing == [] and sorted(report.unexpected) == ["norm.bias", "norm.weight"]
    assert torch.equal(encoder.state_dict()["encoder.1.mlp.fc2.weight"], vit.state_dict()["blocks.1.mlp.fc2.weight"])


def test_a_timm_export_into_a_model_without_rgb_input_names_finetune_init_from(exported):
    _, path = exported
    depth_only = create_model("multimae_pico", in_domains=["depth"], out_domains=["depth"])
    with pytest.raises(CheckpointError, match=r"no rgb input adapter.*finetune\.py init_from="):
        load_pretrained(depth_only, path)


def test_a_file_whose_keys_match_nothing_is_refused(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save({"state_dict": {"conv1.weight": torch.zeros(4, 3, 3, 3), "fc.bias": torch.zeros(4)}}, path)
    model = create_model("multimae_pico")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"no key of .*resnet\.pth matches this MultiMAE \(the file has "
                                              r"conv1\.weight, fc\.bias; the model global_tokens"):
        load_pretrained(model, path)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
