"""Typos never pass silently: the command line's overrides are checked against the entry point's config tree and
schema before Hydra composes anything (cli/override_check.py), and the composed config against the schema after
(validate_config), so ``+trainer.epoch=3`` is refused instead of ignored, and every refusal is one line with a
"did you mean". Keys of the user's own go under ``extra``."""

import pytest
from omegaconf import OmegaConf, open_dict

from attent_vision.cli.override_check import check_overrides, override_arguments
from attent_vision.config import FinetuneConfig, TrainConfig, check_known_keys, validate_config
from attent_vision.config.schema_keys import find_unknown
from attent_vision.errors import ConfigError

from conftest import FINETUNE_CONF_DIR, SHARED_CONF_DIR, TRAIN_CONF_DIR, compose_train, run_in_process

TRAIN = ("attent-train", TRAIN_CONF_DIR / "train.yaml")
FINETUNE = ("attent-finetune", FINETUNE_CONF_DIR / "finetune.yaml")
ESCAPE_HATCH = "to record a key of your own, use +extra.<name>=<value>"


def refusal(argv: list[str], entry=TRAIN) -> str:
    with pytest.raises(ConfigError) as info:
        check_overrides(argv, *entry)
    message = str(info.value)
    assert len(message.splitlines()) == 1, message
    return message


@pytest.mark.parametrize("override,expected", [
    ("+trainer.epoch=3", "unknown config key 'trainer.epoch' (from '+trainer.epoch=3'); did you mean trainer.epochs? "
                         "Keys under trainer: batch_size, compile, device, epochs,"),
    ("++trainer.epoch=3", "unknown config key 'trainer.epoch' (from '++trainer.epoch=3'); did you mean "
                          "trainer.epochs?"),
    ("trainer.epoch=3", "unknown config key 'trainer.epoch' (from 'trainer.epoch=3'); did you mean trainer.epochs?"),
    ("~trainer.epoch", "unknown config key 'trainer.epoch' (from '~trainer.epoch'); did you mean trainer.epochs?"),
    ("selection.temprature=2", "did you mean selection.temperature?"),  # a group's name as a key: the schema's key
    ("data.synthetic.num_trian=4", "did you mean data.synthetic.num_train?"),
    ("selction=soft", "unknown config key 'selction' (from 'selction=soft'); did you mean selection?"),
])
def test_unknown_keys_are_one_line_with_a_suggestion_and_the_escape_hatch(override, expected):
    message = refusal([override])
    assert expected in message and message.endswith(ESCAPE_HATCH), message


@pytest.mark.parametrize("argv,expected", [
    (["selection=sotf"], "config group selection has no option 'sotf'; did you mean soft? "
                         "Options: hard, none, prune, random, rs2, soft"),
    # Nested options by their full name: the last part alone finds it.
    (["experiment=cosine_fixed_soft"], "config group experiment has no option 'cosine_fixed_soft'; did you mean "
                                       "table3/cosine_fixed_soft? Options: paper_imagenet_s50, "),
    (["experiment=table3/cosine_fixed_sotf"], "did you mean table3/cosine_fixed_soft?"),
    (["experiment=full"], "did you mean selection_v2/full or table3/full?"),  # two options end in full
    (["experiment=[paper_imagenet_s50,table3/ful]"], "no option 'table3/ful'; did you mean table3/full?"),
    (["-m", "selection=soft,sotf"], "no option 'sotf'; did you mean soft?"),  # every value of a sweep
    (["-m", "selection=choice(soft,hrad)"], "no option 'hrad'; did you mean hard?"),
    (["+experiment/table3=ful"], "config group experiment/table3 has no option 'ful'; did you mean full?"),
    (["experment/table3=full"], "unknown config group 'experment/table3' (from 'experment/table3=full'); did you "
                                "mean experiment/table3?"),
    (["experiment=null"], "config group experiment takes an option name, not null (from 'experiment=null'); to "
                          "leave it out, use ~experiment."),  # Hydra would answer with a ValueError traceback
    (["debug.epochs=1"], "debug is a config group, chosen with debug=<option> (options: smoke)"),
])
def test_unknown_group_options_are_one_line_with_a_suggestion(argv, expected):
    assert expected in refusal(argv)


def test_every_option_of_every_group_and_the_valid_commands_pass():
    from attent_vision.cli.help_text import config_groups

    groups = config_groups([TRAIN_CONF_DIR, SHARED_CONF_DIR])
    check_overrides([f"{group}={option}" for group, options in groups.items() for option in options], *TRAIN)
    check_overrides(["experiment=table3/full", "model.loss_weights.rgb=2", "+model.loss_weights.depth=2",
                     "teaching.score_modalities={rgb:1}", "hydra/launcher=local_2cpu", "debug=smoke",
                     "experiment=[paper_imagenet_s50,table3/cosine_fixed_hard]", "selection.strategy=soft",
                     "~selection", "+extra.note=baseline", "++extra.sub.key=1", "optim.betas.0=0.9",
                     "experiment=glob(table3/*)", "hydra.run.dir=/tmp/x", "hydra/job_logging=disabled",
                     "+hydra.job.env_set.A=1", "experiment@x=table3/full", "-m", "trainer.seed=range(0,3)",
                     "selection=hard,soft", "--cfg", "job", "--package", "trainer"], *TRAIN)
    check_overrides(["task=nyuv2_depth", "data=nyuv2", "benchmark=nyuv2_seg", "finetune_sweep=all_tasks",
                     "task.head.feature_dim=32", "init_from=/x.pth", "+extra.note=x", "logger=wandb_offline"],
                    *FINETUNE)


def test_finetune_has_its_own_tree_and_schema():
    assert "did you mean nyuv2_depth? Options: imagenet_s50_cls, nyuv2_depth, nyuv2_seg" in refusal(
        ["task=nyuv2_dept"], FINETUNE)
    assert "did you mean task.head?" in refusal(["task.hed.feature_dim=3"], FINETUNE)
    assert "unknown config key 'selection'" in refusal(["selection=soft"], FINETUNE)  # a pretraining group
    assert "did you mean trainer.epochs?" in refusal(["+trainer.epoch=3"], FINETUNE)


def test_flags_are_not_overrides_and_a_tree_of_ones_own_is_not_checked():
    primary = TRAIN[1]
    assert override_arguments(["-m", "--cfg", "job", "-p", "trainer", "--info", "defaults", "a=1", "--resolve"],
                              primary) == ["a=1"]
    assert override_arguments(["--info", "a=1", "--config-name=train"], primary) == ["a=1"]  # its value is optional
    assert override_arguments(["-cn", "train.yaml", "a=1"], primary) == ["a=1"]  # the default primary config
    for flags in (["-cn", "mine"], ["--config-name=mine"], ["--config-dir", "/x"], ["-cp", "/x"], ["-sc"],
                  ["--hydra-help"], ["--experimental-rerun", "x.pickle"], ["hydra.searchpath=[file:///my/conf]"],
                  ["+hydra.searchpath=[pkg://mine.conf]"]):
        assert override_arguments([*flags, "trainer.epoch=3"], primary) is None, flags
        check_overrides([*flags, "trainer.epoch=3"], *TRAIN)
    assert "'trainer.epoch'" in refusal(["--info", "defaults", "trainer.epoch=3"])


def test_schema_keys_follow_the_field_types():
    assert find_unknown(TrainConfig, "model.loss_weights.anything") is None  # dict[str, float]
    assert find_unknown(TrainConfig, "teaching.score_modalities.rgb") is None  # Optional[Any]
    assert find_unknown(TrainConfig, "extra.a.b.c") is None
    assert find_unknown(TrainConfig, "optim.betas.1") is None  # a list takes indices ...
    assert find_unknown(TrainConfig, "optim.betas.x").parent == "optim.betas"  # ... and nothing else
    below_a_value = find_unknown(TrainConfig, "model.name.size")
    assert (below_a_value.parent, below_a_value.name, below_a_value.siblings) == ("model.name", "size", [])
    assert find_unknown(FinetuneConfig, "task.head.hoks").closest == "task.head.hooks"


def test_a_typo_on_the_command_line_stops_before_any_work(tmp_path):
    out = run_in_process(["train.py", "+trainer.epoch=3", f"hydra.run.dir={tmp_path / 'run'}"])
    assert out.returncode == 2 and out.stderr.startswith("error: unknown config key 'trainer.epoch'"), out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and ESCAPE_HATCH in out.stderr
    assert not (tmp_path / "run").exists()

    out = run_in_process(["train.py", "-m", "selection=soft,sotf", f"hydra.sweep.dir={tmp_path / 'sweep'}"])
    assert out.returncode == 2 and "no option 'sotf'; did you mean soft?" in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and not (tmp_path / "sweep").exists()  # no job started

    out = run_in_process(["finetune.py", "task=nyuv2_dept", f"hydra.run.dir={tmp_path / 'ft'}"])
    assert out.returncode == 2 and out.stderr.strip() == ("error: config group task has no option 'nyuv2_dept'; did "
                                                          "you mean nyuv2_depth? Options: imagenet_s50_cls, "
                                                          "nyuv2_depth, nyuv2_seg")

    # The fine-tuning overrides of a pretraining run are checked against fine-tuning's tree before pretraining starts.
    out = run_in_process(["train.py", "debug=smoke", "downstream.tasks=[nyuv2_depth]",
                          'downstream.overrides=["trainer.epoch=1"]', f"hydra.run.dir={tmp_path / 'pre'}"])
    assert out.returncode == 2 and "downstream.overrides: unknown config key 'trainer.epoch'" in out.stderr
    assert not (tmp_path / "pre" / "checkpoints").exists()


def test_valid_commands_and_the_users_own_keys_compose():
    out = run_in_process(["train.py", "experiment=table3/full", "+extra.note=baseline", "+model.loss_weights.rgb=2",
                          "--cfg", "job"])
    assert out.returncode == 0, out.stderr
    assert "note: baseline" in out.stdout and "experiment_name: t3_full" in out.stdout
    out = run_in_process(["finetune.py", "task=nyuv2_depth", "+extra.note=x", "--cfg", "job"])
    assert out.returncode == 0 and "name: nyuv2_depth" in out.stdout and "note: x" in out.stdout, out.stderr

    cfg = compose_train(["+extra.note=x", "+extra.run.tag=7"])
    validate_config(cfg, "pretrain")
    assert cfg.extra.note == "x" and cfg.extra.run.tag == 7


def test_the_composed_config_is_checked_against_the_schema_too():
    """The backstop for keys the command-line check cannot see (``+key`` in a sweep file's params, a primary
    config of the user's own): validate_config refuses them, naming the key."""
    from attent_vision.finetuning.suite import compose_finetune

    cfg = compose_train([])
    with open_dict(cfg):
        cfg.extra.note = "kept"  # the user's own keys ...
        cfg.model.loss_weights.depth = 2.0  # ... and a free-form mapping's pass
    validate_config(cfg, "pretrain")
    OmegaConf.update(cfg, "trainer.epoch", 3, force_add=True)  # what Hydra does with +trainer.epoch=3
    with pytest.raises(ConfigError) as info:
        validate_config(cfg, "pretrain")
    message = str(info.value)
    assert message.startswith("unknown config key 'trainer.epoch': TrainConfig") and len(message.splitlines()) == 1
    assert "did you mean trainer.epochs?" in message and "extra.<name>" in message

    cfg = compose_finetune("nyuv2_depth", None, [])
    OmegaConf.update(cfg, "notes", "x", force_add=True)
    with pytest.raises(ConfigError, match="unknown config key 'notes': FinetuneConfig"):
        check_known_keys(cfg, "finetune")
