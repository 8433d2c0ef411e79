"""attent-pseudolabel: a folder of photos labelled with tiny randomly initialised depth and segmentation models
(tests/toys/tiny_labellers.py: built from configs, no weights downloaded, no network) becomes a dataset the
pretraining loader reads and train.py pretrains on; the labels are exactly what the models and their processors make
of the photos (fp32), and bf16 labels too; an interrupted run (stop_after_batches, SIGTERM) resumes to the same
bytes; two gloo ranks write what one process writes; bad images, a missing extra, an unknown model offline, a model
for the other task, a nested folder, two photos with one stem, an output inside the input and a rerun with other
settings are each one line."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from PIL import Image
from torchvision.transforms import InterpolationMode

from attent_vision.data.image_io import decode_image_file
from attent_vision.data.pretrain.folder import MultiModalFolder
from attent_vision.pseudolabelling.encoding import DEPTH_MAX, VOID, depth_to_uint16, panoptic_to_uint8

from conftest import REPO, run_cli, run_in_process

MANIFEST = "pseudolabel_manifest.json"
COCO_CLASSES = 133
# Two class folders, mixed sizes (H, W) and suffixes (one upper-case .JPEG): (class, file name, size).
PHOTOS = [("cats", "a.png", (40, 48)), ("cats", "b.JPEG", (36, 36)), ("cats", "c.jpg", (40, 48)),
          ("dogs", "d.png", (36, 36)), ("dogs", "e.jpeg", (40, 48)), ("dogs", "f.png", (36, 36))]
# With 0.4, the hash of <class>/<stem> sends some of these six to val and keeps some in train (checked below).
VAL_FRACTION = "0.4"
# The summary line job.py logs at the end of every invocation.
SUMMARY = re.compile(r"pseudo-labels for (\d+) images: (\d+) written, (\d+) already there, (\d+) failed; "
                     r"(\d+) other files ignored")


def make_photos(root: Path, flat: bool = False) -> Path:
    """The six PHOTOS (random pixels, seeded) under ``root``, plus a notes file that is not an image."""
    rng = np.random.default_rng(26)
    for cls, name, size in PHOTOS:
        save_photo(root / name if flat else root / cls / name, size, rng)
    (root / ("notes.txt" if flat else "cats/notes.txt")).write_text("not an image")
    return root


def save_photo(path: Path, size: tuple[int, int], rng: np.random.Generator) -> None:
    """A photo of ``size`` (H, W) at ``path`` (PNG or JPEG by its suffix)."""
    h, w = size
    path.parent.mkdir(parents=True, exist_ok=True)
    # Smooth gradients plus noise: JPEG keeps them close, and the models see some structure.
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([yy * 255 / h, xx * 255 / w, (yy + xx) * 127 / (h + w)], axis=-1)
    pixels = np.clip(base + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, format="PNG" if path.suffix.lower() == ".png" else "JPEG", quality=90)


def label_args(photos: Path, out: Path, labellers: dict, run_dir: Path, *extra: str) -> list[str]:
    """The command line (attent-pseudolabel and its overrides) labelling ``photos`` into ``out`` with the tiny DPT
    and Mask2Former on the CPU, two images per batch (three batches for the six photos)."""
    return ["attent-pseudolabel", f"input={photos}", f"output={out}", f"depth.model={labellers['dpt']}",
            f"semseg.model={labellers['mask2former']}", "depth.resolution=64", "semseg.resolution=64",
            "batch_size=2", "num_workers=0", "device=cpu", "progress_bar=false", f"val_fraction={VAL_FRACTION}",
            f"hydra.run.dir={run_dir}", *extra]


def files_of(root: Path) -> dict[str, bytes]:
    """relative path -> bytes of every file under ``root`` but the manifest (links and copies read the same)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != MANIFEST}


def overridden(args: list[str], *overrides: str) -> list[str]:
    """``args`` with ``overrides`` (key=value) in place of the same keys' earlier values."""
    keys = {o.split("=", 1)[0] for o in overrides}
    return [a for a in args if a.split("=", 1)[0] not in keys] + list(overrides)


def file_states(root: Path) -> dict[str, tuple]:
    """relative path -> (bytes, inode, mtime in ns) of every file under ``root`` but the manifest: what a run that
    writes nothing must leave as it was."""
    return {p.relative_to(root).as_posix(): (p.read_bytes(), p.lstat().st_ino, p.lstat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != MANIFEST}


def png(path: Path) -> np.ndarray:
    """A written label as the loader decodes it: H x W (uint8 or uint16)."""
    return decode_image_file(path)[0].numpy()


def manifest_of(out: Path) -> dict:
    return json.loads((out / MANIFEST).read_text())


def summary_of(stderr: str) -> dict:
    """The counts of the run's summary line."""
    matches = SUMMARY.findall(stderr)
    assert len(matches) == 1, stderr[-3000:]
    return dict(zip(("images", "written", "already", "failed", "ignored"), map(int, matches[0])))


def one_error_line(out) -> str:
    """A refusal as the user sees it: exit status 2, no traceback, exactly one error line; returns it."""
    assert out.returncode == 2, out.stderr[-3000:]
    assert "Traceback" not in out.stderr and "Traceback" not in out.stdout, out.stderr[-3000:]
    lines = [line for line in out.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, out.stderr[-3000:]
    return lines[0]


def split_of(out: Path, cls: str, name: str) -> str:
    """The split folder the rgb of ``cls/name`` was written to (exactly one)."""
    [split] = [s.name for s in out.iterdir() if (s / "rgb" / cls / name).exists()]
    return split


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Every labelling run of this module on one intra-op thread, as each torchrun rank runs (torchrun sets
    OMP_NUM_THREADS=1): float results depend on how a matmul is split over threads, and a last-bit difference in a
    disparity can move a depth value by one, so byte-identical files need equal thread counts, not only equal
    batches."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    return make_photos(tmp_path_factory.mktemp("photos") / "photos")


@pytest.fixture(scope="module")
def labelled(photos, tiny_labellers, tmp_path_factory):
    """One uninterrupted run over the photos, the reference for the resumed and two-rank runs: (output, result)."""
    tmp = tmp_path_factory.mktemp("labelled")
    out = tmp / "dataset"
    result = run_in_process(label_args(photos, out, tiny_labellers, tmp / "run"))
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


# ------------------------------------------------------------------------------------------------------------------
# 1. A labelled folder the loader reads and train.py pretrains on


def test_every_photo_gets_depth_and_semseg_of_its_own_size(photos, labelled, tiny_labellers):
    out, result = labelled
    splits = {(cls, name): split_of(out, cls, name) for cls, name, _ in PHOTOS}
    assert set(splits.values()) == {"train", "val"}, splits  # val_fraction put some in each split
    expected = {MANIFEST}
    for cls, name, (h, w) in PHOTOS:
        split, stem = splits[cls, name], Path(name).stem
        rgb = out / split / "rgb" / cls / name  # the original name, upper-case suffix included
        assert rgb.samefile(photos / cls / name)  # rgb=link: a hard link (one file system here), not a copy
        depth = decode_image_file(out / split / "depth" / cls / f"{stem}.png")
        assert depth.dtype == torch.uint16 and depth.shape == (1, h, w)
        assert int(depth.int().max()) == DEPTH_MAX  # per image: its farthest pixel is 65535
        semseg = decode_image_file(out / split / "semseg" / cls / f"{stem}.png")
        assert semseg.dtype == torch.uint8 and semseg.shape == (1, h, w)
        assert int(semseg.max()) < COCO_CLASSES  # semantic mode: every pixel a class, no void
        expected |= {f"{split}/rgb/{cls}/{name}", f"{split}/depth/{cls}/{stem}.png",
                     f"{split}/semseg/{cls}/{stem}.png"}
    # Nothing else: no temporary files left behind, nothing for the notes file.
    assert {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} == expected

    manifest = manifest_of(out)
    assert manifest["format"] == 1
    assert manifest["models"]["depth"]["model"] == str(tiny_labellers["dpt"])
    assert manifest["models"]["depth"]["class"] == "DPTForDepthEstimation"
    assert manifest["models"]["depth"]["prediction"] == "disparity"
    assert manifest["models"]["depth"]["resolution"] == 64
    semseg = manifest["models"]["semseg"]
    assert semseg["model"] == str(tiny_labellers["mask2former"]) and semseg["num_classes"] == COCO_CLASSES
    assert semseg["mode"] == "semantic" and semseg["class"] == "Mask2FormerForUniversalSegmentation"
    [run] = manifest["invocations"]
    assert run["status"] == "completed" and run["world_size"] == 1
    assert (run["written"], run["skipped_existing"], run["failed"], run["ignored"]) == (6, 0, 0, 1)
    assert run["failed_files"] == []
    assert summary_of(result.stderr) == {"images": 6, "written": 6, "already": 0, "failed": 0, "ignored": 1}


def test_the_pretraining_loader_reads_every_labelled_sample(photos, labelled):
    out, _ = labelled
    seen = set()
    for split in ("train", "val"):
        folder = MultiModalFolder(out, split, ["rgb", "depth", "semseg"])
        assert folder.classes == sorted({cls for cls, name, _ in PHOTOS if split_of(out, cls, name) == split})
        for i, sample in enumerate(folder.samples):
            item = folder[i]
            [(cls, name, (h, w))] = [p for p in PHOTOS if p[0] == folder.classes[sample.class_index]
                                     and Path(p[1]).stem == sample.stem]
            # The loader's pixels are the photo's: the labels were made from exactly what training reads.
            assert torch.equal(item["rgb"], decode_image_file(photos / cls / name, rgb=True))
            assert item["depth"].shape == (1, h, w) and 0 <= item["depth"].min() and item["depth"].max() < 1
            assert item["semseg"].shape == (h, w) and int(item["semseg"].max()) < COCO_CLASSES
            seen.add((cls, name))
    assert seen == {(cls, name) for cls, name, _ in PHOTOS}


def test_train_py_pretrains_on_the_labelled_folder(labelled, tmp_path):
    out, _ = labelled
    run_dir = tmp_path / "pretrain"
    result = run_in_process(["train.py", "debug=smoke", "data=folder", f"data.root={out}", "data.val_split=val",
                             "selection=none", "trainer.epochs=1", "trainer.batch_size=2",
                             "trainer.eval_batch_size=2", "trainer.num_vis_samples=0", "trainer.progress_bar=false",
                             f"hydra.run.dir={run_dir}"])
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    in_train = sum(split_of(out, cls, name) == "train" for cls, name, _ in PHOTOS)
    assert results["status"] == "completed" and results["samples_seen"] == in_train
    assert (run_dir / "pretrained.pth").is_file()


# ------------------------------------------------------------------------------------------------------------------
# 2. Resume


def test_a_stopped_run_resumes_to_the_files_of_an_uninterrupted_one(photos, labelled, tiny_labellers, tmp_path):
    reference, _ = labelled
    out = tmp_path / "dataset"
    args = label_args(photos, out, tiny_labellers, tmp_path / "run")
    stopped = run_in_process([*args, "stop_after_batches=1"])
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    # One batch of two images: the first two of the sorted list (cats/a, cats/b), each with all three files.
    assert sorted(p.name for p in out.rglob("rgb/*/*")) == ["a.png", "b.JPEG"]
    assert len(list(out.rglob("depth/*/*.png"))) == len(list(out.rglob("semseg/*/*.png"))) == 2
    assert [i["status"] for i in manifest_of(out)["invocations"]] == ["stopped"]

    resumed = run_in_process(args)  # the same command again
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert files_of(out) == files_of(reference)
    manifest = manifest_of(out)
    assert [i["status"] for i in manifest["invocations"]] == ["stopped", "completed"]
    assert manifest["models"] == manifest_of(reference)["models"]
    assert (manifest["invocations"][1]["written"], manifest["invocations"][1]["skipped_existing"]) == (4, 2)
    assert summary_of(resumed.stderr) | {"images": None} == {"images": None, "written": 4, "already": 2,
                                                             "failed": 0, "ignored": 1}

    # A batch with one file missing (a run killed between an image's two labels) is recomputed, and only the
    # missing file is written: the same bytes, its neighbours' files untouched.
    split = split_of(out, "dogs", "e.jpeg")
    lost = out / split / "semseg" / "dogs" / "e.png"
    kept = out / split / "depth" / "dogs" / "e.png"
    before = lost.read_bytes(), kept.stat()
    lost.unlink()
    again = run_in_process(args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert lost.read_bytes() == before[0]
    assert (kept.stat().st_ino, kept.stat().st_mtime_ns) == (before[1].st_ino, before[1].st_mtime_ns)
    assert files_of(out) == files_of(reference)
    last = manifest_of(out)["invocations"][-1]
    assert last["status"] == "completed" and (last["written"], last["skipped_existing"]) == (1, 5)

    # Labels made with another setting would mix with these: refused in one line, before any model runs.
    manifest = (out / MANIFEST).read_bytes()
    line = one_error_line(run_in_process([*args, "depth.far_limit=10"]))
    assert "depth.far_limit" in line and str(out / MANIFEST) in line
    assert (out / MANIFEST).read_bytes() == manifest and files_of(out) == files_of(reference)


# ------------------------------------------------------------------------------------------------------------------
# 3. Two gloo ranks


def test_two_gloo_ranks_write_the_files_of_one_process(photos, labelled, tiny_labellers, tmp_path):
    reference, _ = labelled
    out = tmp_path / "dataset"
    _, *overrides = label_args(photos, out, tiny_labellers, tmp_path / "run")
    result = run_cli(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                      "-m", "attent_vision.pseudolabel", *overrides], env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert files_of(out) == files_of(reference)
    [run] = manifest_of(out)["invocations"]
    assert run["status"] == "completed" and run["world_size"] == 2
    # Counts over both ranks: rank 0 labelled batches 0 and 2, rank 1 batch 1.
    assert (run["written"], run["skipped_existing"], run["failed"], run["ignored"]) == (6, 0, 0, 1)


# ------------------------------------------------------------------------------------------------------------------
# 4. A corrupt image


@pytest.fixture
def photos_with_a_bad_one(tmp_path) -> tuple[Path, Path]:
    photos = make_photos(tmp_path / "photos")
    bad = photos / "cats" / "broken.jpg"
    bad.write_bytes(b"this is not a JPEG " * 20)
    return photos, bad


def test_a_corrupt_image_is_reported_counted_and_skipped(photos_with_a_bad_one, tiny_labellers, tmp_path):
    photos, bad = photos_with_a_bad_one
    out = tmp_path / "dataset"
    result = run_in_process(label_args(photos, out, tiny_labellers, tmp_path / "run", "on_bad_image=skip"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert any(str(bad) in line and "skipped" in line for line in result.stderr.splitlines()), result.stderr
    [run] = manifest_of(out)["invocations"]
    assert run["status"] == "completed"
    assert (run["written"], run["failed"]) == (6, 1)
    [failed] = run["failed_files"]
    assert failed["path"] == str(bad) and failed["error"]
    assert summary_of(result.stderr)["failed"] == 1
    assert not [p for p in out.rglob("*") if p.stem == "broken"]  # nothing written for it
    for cls, name, _ in PHOTOS:
        split, stem = split_of(out, cls, name), Path(name).stem
        assert (out / split / "depth" / cls / f"{stem}.png").is_file()
        assert (out / split / "semseg" / cls / f"{stem}.png").is_file()

    # A rerun: the bad image's batch (broken.jpg with c.jpg) is the only one not done; the bad image is counted
    # again, c.jpg is already there, and nothing is written or touched.
    before = file_states(out)
    again = run_in_process(label_args(photos, out, tiny_labellers, tmp_path / "run", "on_bad_image=skip"))
    assert again.returncode == 0, again.stderr[-3000:]
    assert summary_of(again.stderr) == {"images": 7, "written": 0, "already": 6, "failed": 1, "ignored": 1}
    last = manifest_of(out)["invocations"][-1]
    assert last["status"] == "completed" and (last["written"], last["skipped_existing"], last["failed"]) == (0, 6, 1)
    assert [f["path"] for f in last["failed_files"]] == [str(bad)]
    assert file_states(out) == before


def test_a_corrupt_image_stops_the_run_in_one_line_naming_it(photos_with_a_bad_one, tiny_labellers, tmp_path):
    photos, bad = photos_with_a_bad_one
    out = tmp_path / "dataset"
    result = run_in_process(label_args(photos, out, tiny_labellers, tmp_path / "run", "on_bad_image=error"))
    line = one_error_line(result)
    assert str(bad) in line and line.count("on_bad_image=skip") == 1  # the way on, said once
    assert not [p for p in out.rglob("*") if p.stem == "broken"]

    # The manifest, written when the run started, says how it ended and which models made the files it left:
    # batch 0 (a.png, b.JPEG) was written before batch 1 (broken.jpg, c.jpg) stopped the run.
    manifest = manifest_of(out)
    [run] = manifest["invocations"]
    assert run["status"] == "failed" and str(bad) in run["error"] and run["finished"]
    assert (run["written"], run["failed"]) == (2, 0)
    assert sorted(p.name for p in out.rglob("rgb/*/*")) == ["a.png", "b.JPEG"]
    assert manifest["models"]["depth"]["model"] == str(tiny_labellers["dpt"])
    assert manifest["models"]["semseg"]["model"] == str(tiny_labellers["mask2former"])
    # So a rerun with other label settings into what it left is refused, as into a completed output.
    recorded = (out / MANIFEST).read_bytes()
    line = one_error_line(run_in_process(label_args(photos, out, tiny_labellers, tmp_path / "run",
                                                    "on_bad_image=skip", "depth.far_limit=10")))
    assert "depth.far_limit=100.0" in line and str(out / MANIFEST) in line
    assert (out / MANIFEST).read_bytes() == recorded


# ------------------------------------------------------------------------------------------------------------------
# 5-7. Refusals in one line


def test_without_transformers_the_command_names_the_extra(photos, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # what `import transformers` meets when not installed
    out = tmp_path / "dataset"
    result = run_in_process(["attent-pseudolabel", f"input={photos}", f"output={out}", "device=cpu",
                             f"hydra.run.dir={tmp_path / 'run'}"])
    line = one_error_line(result)
    assert "pip install 'attent-vision[pseudolabel]'" in line and "transformers" in line
    assert not out.exists() or not list(out.rglob("*.png"))


def test_an_unknown_model_offline_is_one_line_naming_the_key(photos, tmp_path):
    # A fresh process: huggingface_hub reads HF_HUB_OFFLINE and HF_HOME when it is imported.
    out = tmp_path / "dataset"
    result = run_cli(["-m", "attent_vision.pseudolabel", f"input={photos}", f"output={out}",
                      "depth.model=nobody/no-such-model", "device=cpu", "progress_bar=false",
                      f"hydra.run.dir={tmp_path / 'run'}"],
                     env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty_hf_home")})
    line = one_error_line(result)
    assert "depth.model='nobody/no-such-model'" in line and "save_pretrained" in line
    assert not out.exists() or not list(out.rglob("*.png"))


@pytest.mark.parametrize("where", ["inside", "same"])
def test_an_output_inside_the_input_is_refused_in_one_line(photos, tmp_path, where):
    out = photos / "labelled" if where == "inside" else photos
    before = sorted(p.relative_to(photos) for p in photos.rglob("*"))
    result = run_in_process(["attent-pseudolabel", f"input={photos}", f"output={out}", "device=cpu",
                             f"hydra.run.dir={tmp_path / 'run'}"])
    line = one_error_line(result)
    assert f"output={str(out)!r}" in line and "inside" in line and "outside" in line
    assert sorted(p.relative_to(photos) for p in photos.rglob("*")) == before  # the input untouched


# ------------------------------------------------------------------------------------------------------------------
# 8. Depth Anything, depth only, a flat folder


def test_depth_anything_labels_depth_only_of_a_flat_folder(tiny_labellers, tmp_path):
    photos = make_photos(tmp_path / "photos", flat=True)
    out = tmp_path / "dataset"
    result = run_in_process(["attent-pseudolabel", f"input={photos}", f"output={out}", "tasks=[depth]",
                             f"depth.model={tiny_labellers['depth_anything']}", "depth.resolution=56",
                             "batch_size=2", "num_workers=0", "device=cpu", "progress_bar=false",
                             f"hydra.run.dir={tmp_path / 'run'}"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in (out / "train").iterdir()) == ["depth", "rgb"]  # no semseg folder
    for _, name, (h, w) in PHOTOS:  # images directly in the input folder: class "all"
        depth = decode_image_file(out / "train" / "depth" / "all" / f"{Path(name).stem}.png")
        assert depth.dtype == torch.uint16 and depth.shape == (1, h, w) and int(depth.int().max()) == DEPTH_MAX
    manifest = manifest_of(out)
    assert manifest["models"]["depth"]["class"] == "DepthAnythingForDepthEstimation"
    assert "semseg" not in manifest["models"]
    folder = MultiModalFolder(out, "train", ["rgb", "depth"])
    assert len(folder) == len(PHOTOS) and folder.classes == ["all"]
    for i in range(len(folder)):
        assert folder[i]["depth"].shape[1:] == folder[i]["rgb"].shape[1:]


def test_panoptic_mode_leaves_pixels_of_no_kept_segment_void(photos, tiny_labellers, tmp_path):
    out = tmp_path / "dataset"
    # No segment of a softmax scores above 1.0: every pixel is uncovered.
    result = run_in_process(["attent-pseudolabel", f"input={photos}", f"output={out}", "tasks=[semseg]",
                             f"semseg.model={tiny_labellers['mask2former']}", "semseg.resolution=64",
                             "semseg.mode=panoptic", "semseg.threshold=1.0", "batch_size=2", "num_workers=0",
                             "device=cpu", "progress_bar=false", f"hydra.run.dir={tmp_path / 'run'}"])
    assert result.returncode == 0, result.stderr[-3000:]
    maps = sorted(out.rglob("semseg/*/*.png"))
    assert len(maps) == len(PHOTOS)
    for path in maps:
        assert set(np.unique(np.asarray(Image.open(path)))) == {VOID}
    assert manifest_of(out)["models"]["semseg"]["mode"] == "panoptic"


@pytest.fixture(scope="module")
def confident_mask2former(tmp_path_factory) -> Path:
    """The tiny Mask2Former with a sharp class head (toys/tiny_labellers.py): the plain one's near-uniform class
    scores leave every panoptic pixel void at any threshold, so only this one can show panoptic classes."""
    from toys.tiny_labellers import save_tiny_mask2former

    return save_tiny_mask2former(tmp_path_factory.mktemp("confident") / "mask2former", class_logit_scale=100.0)


def test_panoptic_mode_at_threshold_zero_keeps_segments_and_leaves_the_uncovered_pixels_void(
        photos, confident_mask2former, tmp_path):
    out = tmp_path / "dataset"
    result = run_in_process(["attent-pseudolabel", f"input={photos}", f"output={out}", "tasks=[semseg]",
                             f"semseg.model={confident_mask2former}", "semseg.resolution=64", "semseg.mode=panoptic",
                             "semseg.threshold=0.0", "batch_size=2", "num_workers=0", "device=cpu",
                             "progress_bar=false", f"hydra.run.dir={tmp_path / 'run'}"])
    assert result.returncode == 0, result.stderr[-3000:]
    maps = {path.stem: png(path) for path in sorted(out.rglob("semseg/*/*.png"))}
    assert sorted(maps) == sorted(Path(name).stem for _, name, _ in PHOTOS)
    for stem, labels in maps.items():
        ids = set(np.unique(labels).tolist())
        assert ids <= set(range(COCO_CLASSES)) | {VOID}, (stem, ids)
        assert ids - {VOID}, (stem, ids)  # every photo has a kept segment
    everywhere = set().union(*(np.unique(m).tolist() for m in maps.values()))
    assert len(everywhere - {VOID}) > 1  # segments of several classes
    assert VOID in everywhere  # and pixels no kept segment covers
    semseg = manifest_of(out)["models"]["semseg"]
    assert (semseg["mode"], semseg["threshold"]) == ("panoptic", 0.0)


# ------------------------------------------------------------------------------------------------------------------
# 9. Encodings


def test_disparity_becomes_depth_in_reverse_order_and_finite_where_it_is_zero():
    disparity = torch.tensor([[4.0, 2.0, 1.0], [0.5, 0.0, 8.0]])
    depth = depth_to_uint16(disparity, "disparity", far_limit=1000.0)
    assert depth.dtype == np.uint16 and depth.shape == (2, 3)
    assert depth[1, 2] == depth.min()  # the nearest pixel (largest disparity): the smallest depth
    assert depth[1, 1] == DEPTH_MAX  # disparity 0: the farthest, capped at far_limit, not infinite
    order = [(1, 2), (0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]  # nearest to farthest
    assert all(depth[a] < depth[b] for a, b in zip(order, order[1:]))
    # Relative depth: 8 / d at far_limit 1000, scaled so 1000 -> 65535.
    assert depth[0, 2] == round(8 / 1.0 / 1000 * DEPTH_MAX)
    # Scale does not matter (disparity is relative).
    assert np.array_equal(depth_to_uint16(disparity * 37.5, "disparity", 1000.0), depth)


def test_depth_predictions_keep_their_order_and_reach_the_maximum():
    depth = depth_to_uint16(torch.tensor([[1.0, 2.0], [4.0, 0.5]]), "depth", far_limit=1000.0)
    assert depth[1, 0] == DEPTH_MAX and depth[1, 1] == depth.min() and depth[0, 0] < depth[0, 1] < depth[1, 0]


def test_panoptic_segments_become_class_ids_and_uncovered_pixels_void():
    segmentation = torch.tensor([[1, 1, -1], [2, 0, 2]])  # -1 and 0: ids no segment has
    labels = panoptic_to_uint8(segmentation, [{"id": 1, "label_id": 7}, {"id": 2, "label_id": 132}])
    assert labels.dtype == np.uint8
    assert labels.tolist() == [[7, 7, VOID], [132, VOID, 132]]
    assert VOID == 255


# ------------------------------------------------------------------------------------------------------------------
# 10. --help and typos


def test_help_lists_the_depth_and_semseg_groups():
    result = run_in_process(["attent-pseudolabel", "--help"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"^depth: .*dpt_large", result.stdout, re.MULTILINE), result.stdout
    assert re.search(r"^semseg: .*mask2former_swin_small_coco", result.stdout, re.MULTILINE), result.stdout
    assert "attent-pseudolabel" in result.stdout


def test_a_typo_is_one_line(photos, tmp_path):
    result = run_in_process(["attent-pseudolabel", f"input={photos}", f"output={tmp_path / 'out'}", "batchsize=2",
                             f"hydra.run.dir={tmp_path / 'run'}"])
    line = one_error_line(result)
    assert "batchsize" in line
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------------------------
# 11. The labels are the models' own outputs, at every precision


def test_the_labels_are_what_the_models_and_their_processors_make_of_the_photos(photos, labelled, tiny_labellers):
    """An oracle outside the command: the photos of batch 0 (cats/a.png 40 x 48, cats/b.JPEG 36 x 36) decoded as
    the loader decodes them, resized to 64 x 64, through each model's own processor and model (as one batch, as the
    command ran them: a batch's numerics may depend on its composition), back to each photo's size; the files the
    command wrote hold exactly that."""
    from transformers import AutoImageProcessor, AutoModelForDepthEstimation, AutoModelForUniversalSegmentation

    out, _ = labelled
    batch = [("cats", "a.png"), ("cats", "b.JPEG")]
    images = [decode_image_file(photos / cls / name, rgb=True) for cls, name in batch]
    sizes = [tuple(image.shape[-2:]) for image in images]
    assert sizes == [(40, 48), (36, 36)]
    resized = [TF.resize(image, [64, 64], interpolation=InterpolationMode.BICUBIC, antialias=True)
               for image in images]
    written = [(out / split_of(out, cls, name), cls, Path(name).stem) for cls, name in batch]

    processor = AutoImageProcessor.from_pretrained(tiny_labellers["dpt"])
    model = AutoModelForDepthEstimation.from_pretrained(tiny_labellers["dpt"]).eval()
    with torch.inference_mode():
        inputs = processor(images=resized, do_resize=False, return_tensors="pt")
        predicted = model(pixel_values=inputs["pixel_values"]).predicted_depth  # B x 64 x 64 disparity
    for (split, cls, stem), size, prediction in zip(written, sizes, predicted):
        full = F.interpolate(prediction[None, None], size=size, mode="bicubic", align_corners=False)[0, 0]
        expected = depth_to_uint16(full, "disparity", 100.0)  # far_limit of the depth presets and the schema
        assert np.array_equal(png(split / "depth" / cls / f"{stem}.png"), expected)

    processor = AutoImageProcessor.from_pretrained(tiny_labellers["mask2former"])
    model = AutoModelForUniversalSegmentation.from_pretrained(tiny_labellers["mask2former"]).eval()
    with torch.inference_mode():
        inputs = processor(images=resized, do_resize=False, return_tensors="pt")
        outputs = model(pixel_values=inputs["pixel_values"])
        maps = processor.post_process_semantic_segmentation(outputs, target_sizes=sizes)
    for (split, cls, stem), expected in zip(written, maps):
        assert np.array_equal(png(split / "semseg" / cls / f"{stem}.png"), expected.numpy().astype(np.uint8))


def test_bf16_on_the_cpu_labels_every_photo(photos, tiny_labellers, tmp_path):
    out = tmp_path / "dataset"
    result = run_in_process(label_args(photos, out, tiny_labellers, tmp_path / "run", "precision=bf16"))
    assert result.returncode == 0, result.stderr[-3000:]
    # The models ran in bf16 (the labellers say so when they load), the labels were written as always.
    assert "(DPTForDepthEstimation, bfloat16)" in result.stderr, result.stderr[-3000:]
    assert "(Mask2FormerForUniversalSegmentation, bfloat16)" in result.stderr, result.stderr[-3000:]
    for cls, name, (h, w) in PHOTOS:
        split, stem = split_of(out, cls, name), Path(name).stem
        depth = decode_image_file(out / split / "depth" / cls / f"{stem}.png")
        assert depth.dtype == torch.uint16 and depth.shape == (1, h, w) and int(depth.int().max()) == DEPTH_MAX
        assert len(torch.unique(depth)) > 1
        semseg = decode_image_file(out / split / "semseg" / cls / f"{stem}.png")
        assert semseg.dtype == torch.uint8 and semseg.shape == (1, h, w) and int(semseg.max()) < COCO_CLASSES
    manifest = manifest_of(out)
    assert manifest["settings"]["precision"] == "bf16"
    [run] = manifest["invocations"]
    assert run["status"] == "completed" and run["written"] == len(PHOTOS)


# ------------------------------------------------------------------------------------------------------------------
# 12. rgb files: symlinks and copies


@pytest.mark.parametrize("mode", ["symlink", "copy"])
def test_rgb_files_are_symlinks_to_the_photos_or_copies_of_them(photos, tiny_labellers, tmp_path, mode):
    # The input named through a symbolic link: a symlinked rgb points at the photo's real path.
    through = tmp_path / "photos_link"
    through.symlink_to(photos, target_is_directory=True)
    out = tmp_path / "dataset"
    result = run_in_process(["attent-pseudolabel", f"input={through}", f"output={out}", "tasks=[depth]",
                             f"depth.model={tiny_labellers['dpt']}", "depth.resolution=64", f"rgb={mode}",
                             "batch_size=3", "num_workers=0", "device=cpu", "progress_bar=false",
                             f"hydra.run.dir={tmp_path / 'run'}"])
    assert result.returncode == 0, result.stderr[-3000:]
    for cls, name, _ in PHOTOS:
        source, rgb = (photos / cls / name).resolve(), out / "train" / "rgb" / cls / name
        assert (out / "train" / "depth" / cls / f"{Path(name).stem}.png").is_file()
        if mode == "symlink":
            assert rgb.is_symlink() and os.readlink(rgb) == str(source)
        else:
            assert not rgb.is_symlink() and rgb.read_bytes() == source.read_bytes()
            assert rgb.stat().st_ino != source.stat().st_ino and rgb.stat().st_nlink == 1
    assert manifest_of(out)["invocations"][0]["copied_instead_of_linked"] == 0


# ------------------------------------------------------------------------------------------------------------------
# 13. Inputs and models the command refuses, in one line


def test_a_folder_inside_a_class_folder_is_refused_in_one_line(tiny_labellers, tmp_path):
    photos = make_photos(tmp_path / "photos")
    nested = photos / "dogs" / "puppies"
    save_photo(nested / "g.png", (36, 36), np.random.default_rng(0))
    out = tmp_path / "dataset"
    line = one_error_line(run_in_process(label_args(photos, out, tiny_labellers, tmp_path / "run")))
    assert f"{nested.resolve()} is a folder inside class folder {(photos / 'dogs').resolve()}" in line
    assert f"input={nested.resolve()}" in line  # one way on
    assert not out.exists()


def test_two_photos_with_one_stem_in_a_class_are_refused_in_one_line(tiny_labellers, tmp_path):
    photos = make_photos(tmp_path / "photos")
    twin = photos / "cats" / "a.jpg"  # beside cats/a.png: both would be labelled cats/a.png
    save_photo(twin, (40, 48), np.random.default_rng(0))
    out = tmp_path / "dataset"
    line = one_error_line(run_in_process(label_args(photos, out, tiny_labellers, tmp_path / "run")))
    # Sorted by name, a.jpg comes first.
    assert f"{twin.resolve()} and {(photos / 'cats' / 'a.png').resolve()} share the name 'a' in class folder cats" \
        in line and "rename one" in line
    assert not out.exists()


@pytest.mark.parametrize("task, given, what", [("depth", "mask2former", "is not a depth-estimation model"),
                                               ("semseg", "dpt", "is not a Mask2Former or MaskFormer")])
def test_a_model_for_the_other_task_is_refused_in_one_line(photos, tiny_labellers, tmp_path, task, given, what):
    out = tmp_path / "dataset"
    folder = tiny_labellers[given]
    result = run_in_process(["attent-pseudolabel", f"input={photos}", f"output={out}", f"tasks=[{task}]",
                             f"{task}.model={folder}", f"{task}.resolution=64", "num_workers=0", "device=cpu",
                             "progress_bar=false", f"hydra.run.dir={tmp_path / 'run'}"])
    line = one_error_line(result)
    assert f"{task}.model={str(folder.resolve())!r} {what}" in line, line
    assert not out.exists()  # refused before the manifest or any label


def test_a_rerun_with_another_val_fraction_is_refused_and_one_with_another_semantic_threshold_is_not(
        photos, labelled, tiny_labellers, tmp_path):
    out = tmp_path / "dataset"
    shutil.copytree(labelled[0], out)
    before, recorded = file_states(out), (out / MANIFEST).read_bytes()
    args = label_args(photos, out, tiny_labellers, tmp_path / "run")

    # Another val_fraction would move images between splits: an image could be in train and in val.
    line = one_error_line(run_in_process(overridden(args, "val_fraction=0.2")))
    assert f"val_fraction={float(VAL_FRACTION)!r}, not 0.2" in line and str(out / MANIFEST) in line
    assert (out / MANIFEST).read_bytes() == recorded and file_states(out) == before

    # semseg.threshold decides nothing in semantic mode: the rerun is accepted (and finds everything done).
    result = run_in_process([*args, "semseg.threshold=0.5"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert summary_of(result.stderr) == {"images": 6, "written": 0, "already": 6, "failed": 0, "ignored": 1}
    manifest = manifest_of(out)
    assert [i["status"] for i in manifest["invocations"]] == ["completed", "completed"]
    assert manifest["models"]["semseg"]["threshold"] == 0.8  # the recorded models are kept
    assert file_states(out) == before


# ------------------------------------------------------------------------------------------------------------------
# 14. SIGTERM


@pytest.mark.slow
def test_sigterm_stops_after_the_current_batch_and_a_rerun_ends_with_the_uninterrupted_files(tiny_labellers,
                                                                                            tmp_path):
    """A real signal to a real process (run_in_process cannot take one): the batch in flight finishes, every rgb
    written has its labels, no temporary file is left, the manifest says interrupted, the exit status is 143; then
    the same command completes the output with the bytes of a run that was never stopped."""
    rng = np.random.default_rng(14)
    photos = tmp_path / "photos"
    count = 12  # one per batch: the run is far from done when its first file appears (a batch takes ~0.1 s)
    for i in range(count):
        save_photo(photos / ("cats" if i % 2 else "dogs") / f"p{i:02d}.png", (40, 48), rng)
    out = tmp_path / "dataset"
    args = overridden(label_args(photos, out, tiny_labellers, tmp_path / "run"), "batch_size=1")
    stderr = tmp_path / "stderr.txt"
    with stderr.open("w") as err:
        process = subprocess.Popen([sys.executable, "-m", "attent_vision.pseudolabel", *args[1:]], cwd=REPO,
                                   env=dict(os.environ, OMP_NUM_THREADS="1"), stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 60
        while not list(out.glob("*/depth/*/*.png")):
            assert process.poll() is None, stderr.read_text()[-3000:]
            assert time.monotonic() < deadline, "no depth label after 60 s: " + stderr.read_text()[-3000:]
            time.sleep(0.02)
        # The manifest was written before the first batch: it already names the run.
        assert manifest_of(out)["invocations"][-1]["status"] == "running"
        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log = stderr.read_text()
    assert status == 128 + signal.SIGTERM, log[-3000:]
    assert "Traceback" not in log and "stopped by a signal" in log, log[-3000:]
    [run] = manifest_of(out)["invocations"]
    assert run["status"] == "interrupted" and run["finished"]
    assert not list(out.rglob("*.tmp"))
    rgbs = list(out.glob("*/rgb/*/*"))
    assert 0 < len(rgbs) == run["written"] < count  # stopped part way
    for rgb in rgbs:
        split = rgb.parents[2]
        assert (split / "depth" / rgb.parent.name / f"{rgb.stem}.png").is_file()
        assert (split / "semseg" / rgb.parent.name / f"{rgb.stem}.png").is_file()

    resumed = run_in_process(args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert summary_of(resumed.stderr) == {"images": count, "written": count - len(rgbs), "already": len(rgbs),
                                          "failed": 0, "ignored": 0}
    reference = tmp_path / "reference"
    whole = run_in_process(overridden(label_args(photos, reference, tiny_labellers, tmp_path / "run_ref"),
                                      "batch_size=1"))
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert len(files_of(reference)) == 3 * count and files_of(out) == files_of(reference)
