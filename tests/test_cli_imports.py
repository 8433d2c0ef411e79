"""Commands that answer before torch loads: ``--help``, ``--cfg job`` and every kind of config error of the entry
points come back without importing torch, torchvision, timm or wandb (importing torch alone takes longer than all
they do). Each command runs in turn in one subprocess, which reports after each what it has imported so far."""

import json

from conftest import REPO, run_cli

HEAVY = ("torch", "torchvision", "timm", "wandb", "transformers")

PROBE = """
import json, runpy, sys
from hydra.core.global_hydra import GlobalHydra

report = []
for script, *args in json.loads(sys.argv[1]):
    sys.argv = [script, *args]
    try:
        runpy.run_path(script, run_name="__main__")
        code = 0
    except SystemExit as e:
        code = e.code
    GlobalHydra.instance().clear()
    report.append({"command": " ".join([script, *args]), "exit": code,
                   "imported": sorted(m for m in %r if m in sys.modules)})
print("PROBE " + json.dumps(report))
""" % (HEAVY,)


def test_help_cfg_and_config_errors_answer_without_importing_torch(tmp_path):
    run = f"hydra.run.dir={tmp_path / 'run'}"
    commands = [
        ["train.py", "--help"],
        ["finetune.py", "--help"],
        ["train.py", "--cfg", "job"],
        ["finetune.py", "--cfg", "job"],
        ["train.py", "trainer.epochs=-1", run],  # a value our schema checks refuse
        ["train.py", "selection=hard", "selection.reweight=unbiased", run],  # needs the strategies' traits
        ["train.py", "teaching.score=progress", run],  # needs the scores' traits
        ["finetune.py", "trainer.epochs=-1", run],
        ["finetune.py", "task.in_domains=[semseg]", run],  # needs the model's input modalities
        ["train.py", "trainer.epohcs=3"],  # the command-line check (override_check.py): an unknown key ...
        ["train.py", "selection=sotf"],  # ... an unknown option
        ["train.py", "+trainer.epoch=3"],  # ... a key Hydra's + would add
        ["train.py", "experiment=cosine_fixed_soft"],  # ... a nested option by its last part
        ["finetune.py", "task=nyuv2_dept"],
        ["attent_vision/pseudolabel.py", "--help"],  # the pseudo-labelling command: help, a value out of range,
        ["attent_vision/pseudolabel.py", "batch_size=0", "input=.", "output=/nonexistent", run],  # a folder check,
        ["attent_vision/pseudolabel.py", "input=/nonexistent", "output=/elsewhere", run],
        ["attent_vision/pseudolabel.py", "batchsize=2"],  # a typo: none needs transformers or torch
        ["train.py", "--config-dir", str(REPO / "attent_vision" / "conf" / "train"), "selection=sotf"],  # Hydra's
    ]
    out = run_cli(["-c", PROBE, json.dumps(commands)], cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.rsplit("PROBE ", 1)[1])
    assert [r["exit"] for r in report] == [0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 2, 2, 2, 1], report
    for r in report:
        assert r["imported"] == [], f"{r['command']} imported {r['imported']}"
    assert ("== Configuration groups ==" in out.stdout
            and "selection: hard, none, prune, random, rs2, soft" in out.stdout)


def test_help_lists_the_groups_hydra_lists_and_our_launchers():
    """Our --help (help_text.py) lists the groups and options Hydra finds in the same search path, plus the
    launcher presets we ship (hydra/launcher)."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from attent_vision.cli.help_text import config_groups
    from attent_vision.conf import SHARED_CONF_DIR, TRAIN_CONF_DIR

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(TRAIN_CONF_DIR), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()

        def hydra_groups(parent=""):
            for group in loader.list_groups(parent):
                name = f"{parent}/{group}" if parent else group
                yield from hydra_groups(name)
                options = loader.get_group_options(name)
                if options:
                    yield name, sorted(options)

        theirs = {g: o for g, o in hydra_groups() if not g.startswith("hydra")}
        theirs["hydra/launcher"] = sorted(o for o in loader.get_group_options("hydra/launcher")
                                          if not o.startswith(("basic", "submitit")))
    assert config_groups([TRAIN_CONF_DIR, SHARED_CONF_DIR]) == theirs
