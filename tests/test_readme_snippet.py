"""The README's Python API block runs verbatim, as a user would paste it, and does what its comments say."""

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def python_api_block() -> str:
    """The ```python block under the README's "## Python API" heading (and before the next heading)."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, flags=re.S)
    assert match, "README.md has no ```python block under '## Python API'"
    return match.group(1)


def test_readme_python_api_block_runs_verbatim(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # a snippet that writes files must not write them into the checkout
    names: dict = {"__name__": "__readme__"}
    exec(compile(python_api_block(), str(README) + ":Python API", "exec"), names)  # noqa: S102 - our own README

    # The pretraining model at its config's defaults (pico: 32 px, patch 8) predicts every output modality.
    model = names["model"]
    assert (model.image_size, model.patch_size) == (32, 8)
    preds, masks, task_masks = names["preds"], names["masks"], names["task_masks"]
    assert {d: tuple(p.shape) for d, p in preds.items()} == {
        "rgb": (2, 3, 32, 32), "depth": (2, 1, 32, 32), "semseg": (2, 133, 8, 8), "norm_rgb": (2, 3, 32, 32)}
    # The second forward used the explicit masks as given.
    assert all(torch.equal(masks[d], task_masks[d]) for d in task_masks)
    assert [int((~masks[d][0]).sum()) for d in ("rgb", "depth", "semseg")] == [6, 2, 0]

    # The encoder took every weight the pretraining checkpoint had for it.
    report, encoder = names["report"], names["encoder"]
    assert report.missing == [] and any(k.startswith("output_adapters.") for k in report.unexpected)
    assert torch.equal(encoder.state_dict()["encoder.0.attn.qkv.weight"],
                       model.state_dict()["encoder.0.attn.qkv.weight"])
    assert names["tokens"].shape == (2, 16 + 1, 32)

    # Selection and schedules.
    subset = names["subset"]
    assert subset.shape == (200,) and len(set(subset.tolist())) == 200 and int(subset.max()) < 1000
    assert names["ratios"][0] == 0.2 and abs(names["ratios"][-1] - 0.8) < 1e-9
    assert names["intervals"][0] == 5 and names["intervals"][-1] == 10
    assert len(names["plan"].epochs) == 100
    assert "optimizer steps" in capsys.readouterr().out
