"""The whole tree is clean under the project's linter settings (pyproject.toml [tool.ruff]: pyflakes, pycodestyle,
sorted imports, 120 characters a line)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format=concise", "."],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, f"ruff check . (fix with `ruff check --fix .` where it can):\n{done.stdout[-4000:]}"
