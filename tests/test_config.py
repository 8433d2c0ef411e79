"""Every config composes and validates; typos and out-of-range values fail at start, naming the key."""


import pytest
import torch
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigKeyError

from attent_vision.config import validate_train_config
from attent_vision.errors import ConfigError

from conftest import REPO, SHARED_CONF_DIR, TRAIN_CONF_DIR, compose_train

GROUPS = ["model", "data", "optim", "ratio", "interval", "selection", "logger", "debug"]


def options(group):
    folder = (SHARED_CONF_DIR if group == "logger" else TRAIN_CONF_DIR) / group
    return sorted(p.stem for p in folder.glob("*.yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_group_option_composes_and_validates(group, option):
    overrides = [f"{group}={option}"]
    if group == "data" and option != "synthetic":
        overrides.append("data.root=/data/somewhere")
    validate_train_config(compose_train(overrides))


EXPERIMENTS = sorted(str(p.relative_to(TRAIN_CONF_DIR / "experiment").with_suffix(""))
                     for p in (TRAIN_CONF_DIR / "experiment").rglob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_validates(experiment):
    cfg = compose_train([f"experiment={experiment}"])
    if cfg.data.name != "synthetic":  # the paper's ImageNet-S50 experiment reads a folder
        cfg = compose_train([f"experiment={experiment}", "data.root=/data/somewhere"])
    validate_train_config(cfg)
    assert cfg.experiment_name != "default"


def test_table3_has_ten_distinct_rows():
    rows = [e for e in EXPERIMENTS if e.startswith("table3/")]
    settings = set()
    for row in rows:
        cfg = compose_train([f"experiment={row}"])
        strategy = cfg.selection.strategy
        settings.add(("-", "-", strategy) if strategy == "none"
                     else (cfg.ratio.schedule, cfg.interval.schedule, strategy))
    assert len(rows) == 10 and len(settings) == 10
    assert ("incremental", "incremental", "soft") in settings and ("-", "-", "none") in settings


def test_paper_setting_matches_the_paper():
    cfg = compose_train(["experiment=paper_imagenet_s50", "data.root=/x"])
    assert (cfg.model.name, cfg.model.image_size, cfg.model.patch_size) == ("multimae_base", 224, 16)
    assert (cfg.trainer.epochs, cfg.trainer.batch_size, cfg.optim.blr, cfg.optim.min_lr) == (800, 660, 1e-4, 1e-6)
    assert (cfg.ratio.schedule, cfg.interval.schedule, cfg.selection.strategy) == ("incremental", "incremental", "soft")
    assert (cfg.interval.initial_interval, cfg.interval.max_interval, cfg.teaching.total_cycles) == (5, 10, 10)
    # A Table-3 row on top of the paper's scale keeps the scale and changes the row.
    combined = compose_train(["experiment=[paper_imagenet_s50,table3/cosine_fixed_hard]", "data.root=/x"])
    assert combined.trainer.epochs == 800 and combined.interval.initial_interval == 5
    assert (combined.ratio.schedule, combined.interval.schedule,
            combined.selection.strategy) == ("cosine", "fixed", "hard")


def test_default_run_uses_the_papers_adopted_setting():
    cfg = compose_train([])
    assert (cfg.ratio.schedule, cfg.interval.schedule, cfg.selection.strategy) == ("incremental", "incremental", "soft")
    assert compose_train(["selection=none"]).selection.strategy == "none"


@pytest.mark.parametrize("override", ["trainer.epochz=3", "selection.temprature=2", "model.dimm=3"])
def test_unknown_keys_fail_naming_the_key(override):
    with pytest.raises((ConfigCompositionException, ConfigKeyError)) as info:
        compose_train([override])
    key = override.split("=")[0].split(".")[-1]
    assert key in str(info.value) + str(info.value.__cause__)


@pytest.mark.parametrize(
    "override,key",
    [
        ("ratio.initial_ratio=0", "ratio.initial_ratio"),
        ("ratio.final_ratio=1.5", "ratio.final_ratio"),
        ("ratio.initial_ratio=0.9", "ratio.initial_ratio"),  # above final_ratio (0.8)
        ("interval.initial_interval=0", "interval.initial_interval"),
        ("interval.max_interval=1", "interval.max_interval"),  # below initial_interval
        ("selection.strategy=softest", "selection.strategy"),
        ("selection.temperature=0", "selection.temperature"),
        ("selection.temperature=-1", "selection.temperature"),
        ("selection.normalization=l2", "selection.normalization"),
        ("teaching.total_cycles=30", "trainer.epochs"),
        ("trainer.batch_size=0", "trainer.batch_size"),
        ("model.patch_size=7", "model.image_size"),
        ("model.in_domains=[rgb,normals]", "model"),
        ("data=folder", "data.root"),
        ("data.root=/data/somewhere", "data.cache_dir"),  # the synthetic data has no root: where it is cached
        ("trainer.precision=fp8", "trainer.precision"),
        ("teaching.score_source=free", "teaching.score_source"),
        ("data.max_val_samples=0", "data.max_val_samples"),  # validated nothing and reported a loss of 0
        ("trainer.max_nonfinite_steps=-1", "trainer.max_nonfinite_steps"),
        ("optim.eps=-1", "optim.eps"),
        ("data.prefetch_factor=0", "data.prefetch_factor"),  # with the default 2 workers
        ("model.drop_path_rate=2", "model.drop_path_rate"),
        ("model.semseg_num_classes=0", "model.semseg_num_classes"),
        ("model.num_encoded_tokens=0", "model.num_encoded_tokens"),
        ("+model.loss_weights.depth=-1", "model.loss_weights.depth"),
        ("trainer.device=gpu", "trainer.device"),
        ("trainer.seed=-5", "trainer.seed"),
        ("teaching.refresh_fraction=0", "teaching.refresh_fraction"),
        ("teaching.refresh_fraction=1.5", "teaching.refresh_fraction"),
        ("teaching.max_scoring_fraction=0", "teaching.max_scoring_fraction"),
        ("teaching.max_scoring_fraction=2", "teaching.max_scoring_fraction"),
        ("teaching.score=rho", "teaching.score"),
        ("teaching.score=progress", "teaching.score"),  # needs history: refused with the default scoring pass
        ("teaching.reference_max_steps=0", "teaching.reference_max_steps"),
        ("teaching.score_modalities={rgb:-1}", "teaching.score_modalities.rgb"),
        ("teaching.score_modalities={normals:1}", "teaching.score_modalities.normals"),
        ("teaching.score_modalities={rgb:0}", "teaching.score_modalities"),
        ("selection.reweight=yes", "selection.reweight"),
        ("selection.prune_ratio=-0.1", "selection.prune_ratio"),
        ("selection.prune_ratio=1", "selection.prune_ratio"),
        ("selection.prune_delta=0", "selection.prune_delta"),
    ],
)
def test_out_of_range_values_fail_naming_the_key(override, key):
    cfg = compose_train([override])
    with pytest.raises(ConfigError) as info:
        validate_train_config(cfg)
    assert key in str(info.value)
    assert len(str(info.value).splitlines()) == 1


@pytest.mark.parametrize("overrides,key", [
    (["selection=hard", "selection.reweight=unbiased"], "selection.reweight"),  # top-k has no unbiased form
    (["selection=soft", "teaching.score=progress", "teaching.score_source=pass"], "teaching.score"),
    (["selection=soft", "teaching.score=learnability", "teaching.reference_holdout=0.001"],
     "teaching.reference_holdout"),  # no holdout sample left: refused at set-up, when N is known
    (["selection=soft", "teaching.normalize_free_scores=true"], "teaching.normalize_free_scores"),  # pass scores
    (["selection=soft", "teaching.score_source=training", "teaching.normalize_free_scores=true",
      "teaching.score=learnability"], "teaching.normalize_free_scores"),  # ratios minus raw reference losses
])
def test_combinations_without_meaning_fail_naming_the_key(tmp_path, overrides, key):
    from attent_vision.pretraining.trainer import Pretrainer

    cfg = compose_train(["debug=smoke", *overrides])
    with pytest.raises(ConfigError) as info:
        validate_train_config(cfg)
        Pretrainer(cfg, tmp_path / "run")  # what the schema cannot see (an empty holdout) fails at set-up
    assert key in str(info.value) and len(str(info.value).splitlines()) == 1


def test_every_user_facing_yaml_key_has_a_comment():
    """The style rule for configs: every key a user may change carries a comment saying what it does."""
    missing = []
    for path in (REPO / "attent_vision" / "conf").rglob("*.yaml"):
        if "hydra" in path.parts:
            continue
        previous, text_block_indent = "", None
        for number, line in enumerate(path.read_text().splitlines(), 1):
            stripped = line.strip()
            indent = len(line) - len(line.lstrip())
            if text_block_indent is not None and (indent > text_block_indent or not stripped):
                continue  # inside a YAML block scalar (e.g. hydra.help.template): text, not keys
            text_block_indent = indent if stripped.split("#")[0].rstrip().endswith(("|", "|-", ">")) else None
            # A key is documented by an inline comment or by a comment on the line above it.
            documented = "#" in stripped or previous.startswith("#")
            is_setting = ":" in stripped and not stripped.endswith(":") and not stripped.startswith(("#", "-"))
            fixed_identity = stripped.startswith(("schedule:", "strategy:", "name:"))  # what the file *is*
            if is_setting and not documented and not fixed_identity:
                missing.append(f"{path.relative_to(REPO)}:{number}: {stripped}")
            if stripped:
                previous = stripped
    assert not missing, "\n".join(missing[:20])


def test_cuda_device_needs_a_visible_gpu():
    cfg = compose_train(["trainer.device=cuda"])
    if torch.cuda.is_available():
        validate_train_config(cfg)  # accepted where a GPU is visible
    else:
        with pytest.raises(ConfigError, match="no CUDA GPU is visible"):
            validate_train_config(cfg)
    with pytest.raises(ConfigError, match="sees|no CUDA GPU is visible"):  # no GPU index 99 either way
        validate_train_config(compose_train(["trainer.device=cuda:99"]))
