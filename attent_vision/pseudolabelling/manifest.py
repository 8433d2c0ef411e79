"""``<output>/pseudolabel_manifest.json``: how a labelled dataset was made (models, revisions, settings, library
versions) and what each invocation did (written, already there, failed with paths, ignored).

A rerun into the same output appends its invocation. One made with another model or other label settings for a
task the folder already has is refused before any model loads: a dataset whose labels come from two models is
not one dataset (a new output folder, or the recorded settings, is the way forward). So is one that would assign
images to splits differently (another split name or val_fraction): an image could end up in train and in val.
"""

import json
from importlib import metadata
from pathlib import Path

from ..engine.provenance import code_version, package_versions
from ..engine.results import write_json_atomic
from ..errors import DataError

MANIFEST = "pseudolabel_manifest.json"
FORMAT = 1
# What decides a task's label values: the same keys must hold in every invocation into one output (far_limit only
# matters to disparity models, threshold only to panoptic labels).
LABEL_KEYS = {"depth": ("model", "revision", "resolution", "prediction"), "semseg": ("model", "revision", "resolution",
                                                                                    "mode")}
CONDITIONAL_KEYS = {"depth": ("far_limit", "prediction", "disparity"), "semseg": ("threshold", "mode", "panoptic")}
SPLIT_KEYS = ("split", "val_split", "val_fraction")  # what decides which split an image goes to


def manifest_path(output: Path) -> Path:
    return output / MANIFEST


def read_manifest(output: Path) -> dict | None:
    path = manifest_path(output)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read {path} ({e}); it records how this dataset was made: restore it, or remove it "
                        "to label this output again from here (the files already written stay)") from None


def label_keys(task: str, settings: dict) -> tuple[str, ...]:
    key, decided_by, value = CONDITIONAL_KEYS[task]
    return LABEL_KEYS[task] + ((key,) if settings.get(decided_by) == value else ())


def check_same_output(manifest: dict | None, labels: dict[str, dict], settings: dict, output: Path) -> None:
    """Refuse to add labels made with other settings to ``output`` (``labels``: task -> cfg.<task> as a dict), or
    images assigned to splits another way (``settings``: this invocation's top-level settings)."""
    if not manifest:
        return
    for task, recorded in manifest.get("models", {}).items():
        if task not in labels:
            continue
        for key in label_keys(task, recorded):
            if recorded.get(key) != labels[task].get(key):
                raise DataError(
                    f"{manifest_path(output)} says its {task} labels were made with {task}.{key}="
                    f"{recorded.get(key)!r}, not {labels[task].get(key)!r}: labels from two settings would mix in "
                    f"one dataset; rerun with {task}.{key}={recorded.get(key)!r} or write to a new output folder")
    recorded = manifest.get("settings", {})
    for key in SPLIT_KEYS:
        if key in recorded and recorded[key] != settings[key]:
            raise DataError(f"{manifest_path(output)} says its images were assigned to splits with {key}="
                            f"{recorded[key]!r}, not {settings[key]!r}: an image could land in two splits; rerun "
                            f"with {key}={recorded[key]!r} or write to a new output folder")


def updated_manifest(manifest: dict | None, models: dict[str, dict], settings: dict, invocation: dict) -> dict:
    """The manifest with this invocation appended (models of new tasks added; recorded ones kept)."""
    manifest = dict(manifest or {"format": FORMAT, "models": {}, "invocations": []})
    manifest["models"] = {**models, **manifest.get("models", {})}
    manifest["settings"] = settings
    manifest["versions"] = package_versions() | {"transformers": metadata.version("transformers"),
                                                  "code": code_version()}
    manifest["invocations"] = [*manifest.get("invocations", []), invocation]
    return manifest


def write_manifest(output: Path, manifest: dict) -> None:
    write_json_atomic(manifest, manifest_path(output))


def resolved_revisions_differ(manifest: dict | None, models: dict[str, dict]) -> list[str]:
    """Tasks whose model resolved to another hub commit than the recorded one (the same id and revision, but a
    branch that moved): worth a warning, not a refusal (the user asked for the same revision)."""
    if not manifest:
        return []
    recorded = manifest.get("models", {})
    return [task for task, model in models.items()
            if task in recorded and None not in (recorded[task].get("resolved_revision"), model["resolved_revision"])
            and recorded[task]["resolved_revision"] != model["resolved_revision"]]

