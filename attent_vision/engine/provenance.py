"""Where a run's numbers came from: the code (git commit, and whether the checkout had changes), the libraries,
the host and the device, recorded once at the start of a run in results.json ``provenance``."""

import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = ("attent-vision", "torch", "torchvision", "timm", "hydra-core", "omegaconf", "numpy")


def _git(args: list[str], where: Path) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=where, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):  # no git, or a hung file system: provenance is best effort
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code_version(where: Path | None = None) -> dict:
    """{"commit", "dirty"} of the git checkout holding this package (both None for an installed wheel)."""
    where = where or Path(__file__).resolve().parents[2]
    commit = _git(["rev-parse", "HEAD"], where) if (where / ".git").exists() else None
    if commit is None:
        return {"commit": None, "dirty": None}
    # Tracked files only: outputs/ and caches in the checkout are not code.
    status = _git(["status", "--porcelain", "--untracked-files=no"], where)
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def package_versions() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def provenance(device) -> dict:
    """The record of results.json ``provenance`` for a run on ``device`` (a torch.device)."""
    record = {**code_version(), "packages": package_versions(), "python": sys.version.split()[0],
              "host": socket.gethostname(), "platform": platform.platform(), "device": str(device)}
    if getattr(device, "type", "") == "cuda":
        import torch

        record["device_name"] = torch.cuda.get_device_name(device)
        record["cuda"] = torch.version.cuda
    return record
