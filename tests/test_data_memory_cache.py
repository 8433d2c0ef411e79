"""``data.cache=memory``: decoded samples kept in RAM after their first read. Batches and whole runs are
bit-identical with and without it (in the training process and with loader workers), a second read does not touch
the files, the cache holds one entry per sample and counts its bytes exactly, a sample that fails to load is not
cached, and a cache that would not fit in memory is refused in one line before the run starts."""

import logging
import shutil

import pytest
import torch

from attent_vision.data.pretrain import memory_cache
from attent_vision.data.pretrain.memory_cache import MemoryCachedFolder, format_bytes
from attent_vision.data.skipping import collate_skipping_bad
from attent_vision.pretraining.builders import build_pretrain_model, build_pretrain_views
from attent_vision.pretraining.trainer import pretrain

from conftest import compose_train, run_in_process

SMOKE = ["debug=smoke", "trainer.progress_bar=false"]  # 96 + 32 samples; 5 epochs, 3 of them after a selection


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread, as under pytest-xdist: on a busy 2-core machine two threads make these tiny runs ten
    times slower (each comparison below runs under the same setting, so bit-identity is unaffected)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def views_of(root, *extra):
    cfg = compose_train(["debug=smoke", "data=folder", f"data.root={root}", *extra])
    torch.manual_seed(0)
    return build_pretrain_views(cfg, build_pretrain_model(cfg), root)


def batch(view, indices, epoch):
    return collate_skipping_bad([view[(i, epoch, 1.0)] for i in indices])


def assert_same_batch(a, b):
    assert torch.equal(a["index"], b["index"])
    for key in ("rgb", "depth", "semseg"):
        assert torch.equal(a[key], b[key]), key
    assert all(torch.equal(a["masks"][t], b["masks"][t]) for t in a["masks"])


def test_training_batches_are_bit_identical_with_and_without_the_cache(smoke_data_root):
    plain, cached = views_of(smoke_data_root)["train"], views_of(smoke_data_root, "data.cache=memory")["train"]
    assert isinstance(cached.folder, MemoryCachedFolder) and not isinstance(plain.folder, MemoryCachedFolder)
    order = torch.randperm(len(plain), generator=torch.Generator().manual_seed(1)).tolist()
    for epoch in (0, 1):  # the first epoch fills the cache, the second reads from it; the crops differ per epoch
        for start in range(0, len(order), 32):
            keys = order[start:start + 32]
            assert_same_batch(batch(plain, keys, epoch), batch(cached, keys, epoch))
    assert cached.folder.cached_samples == len(plain)


def test_the_second_read_comes_from_memory_not_the_files(smoke_data_root, tmp_path, caplog):
    root = tmp_path / "data"
    shutil.copytree(smoke_data_root, root)
    with caplog.at_level(logging.INFO, logger="attent_vision.data.pretrain.memory_cache"):
        views = views_of(root, "data.cache=memory")
    estimates = [r for r in caplog.records if "the decoded-sample cache may grow to" in r.getMessage()]
    assert len(estimates) == 1  # logged once per run
    train, score, val = views["train"], views["score"], views["val"]
    assert score.folder is train.folder  # one cache for every view of the training folder
    n = len(train)
    for i in range(n):
        train[(i, 0, 1.0)]
    expected = batch(views_of(smoke_data_root)["train"], range(n), 1)  # uncached, from intact files
    shutil.rmtree(root / "train")  # nothing left to decode
    assert_same_batch(batch(train, range(n), 1), expected)
    batch(score, range(n), 0)  # the scoring view reads the same cache
    cache = train.folder
    assert cache.cached_samples == n  # one entry per sample, however often it was read
    stored = [cache.stored(i) for i in range(n)]
    assert cache.cached_bytes == sum(t.nbytes for entry in stored for t in entry.values())
    # Semseg labels (int64 when read) are kept as uint8, and given back as int64, exactly.
    assert stored[0]["semseg"].dtype == torch.uint8 and cache[0]["semseg"].dtype == torch.int64
    assert val.folder.cached_samples <= 8  # only the probes that measured a sample's bytes: nothing read it yet


def test_a_sample_that_fails_to_load_is_not_cached(smoke_data_root, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(smoke_data_root, root)
    bad = sorted((root / "train" / "rgb").glob("*/*.png"))[5]
    intact = bad.read_bytes()
    bad.write_bytes(intact[:80])
    train = views_of(root, "data.cache=memory", "data.skip_bad_samples=true")["train"]
    items = [train[(i, 0, 1.0)] for i in range(len(train))]
    (failed,) = [it for it in items if "bad" in it]
    assert str(bad) in failed["bad"] and train.folder.cached_samples == len(train) - 1
    assert "bad" in train[(failed["index"], 1, 1.0)]  # still failing, read again each time
    bad.write_bytes(intact)  # repaired: the next read decodes it
    assert "bad" not in train[(failed["index"], 1, 1.0)] and train.folder.cached_samples == len(train)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Smoke pretrainings without the cache, with it, and with it in two loader workers."""
    out = {}
    for name, extra in {"none": [], "memory": ["data.cache=memory"],
                        "memory_workers": ["data.cache=memory", "data.num_workers=2"]}.items():
        run_dir = tmp_path_factory.mktemp("runs") / name
        results = pretrain(compose_train(SMOKE + extra), run_dir)
        out[name] = results, torch.load(run_dir / "pretrained.pth", weights_only=True)["model"]
    return out


def assert_same_run(a, b):
    (ra, wa), (rb, wb) = a, b
    assert ra["status"] == rb["status"] == "completed"
    assert ra["final"]["val_loss"] == rb["final"]["val_loss"]
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_a_smoke_pretraining_with_the_cache_ends_with_identical_weights(runs):
    assert_same_run(runs["none"], runs["memory"])


def test_with_loader_workers_the_run_matches_the_in_process_one(runs):
    assert_same_run(runs["memory"], runs["memory_workers"])


def test_a_run_resumed_with_the_cache_turned_on_matches_the_uninterrupted_one(runs, tmp_path):
    stopped = pretrain(compose_train(SMOKE + ["trainer.stop_after_steps=7"]), tmp_path / "run")
    assert stopped["status"] == "interrupted"
    resumed = pretrain(compose_train(SMOKE + ["data.cache=memory"]), tmp_path / "run")  # data.cache may differ
    weights = torch.load(tmp_path / "run" / "pretrained.pth", weights_only=True)["model"]
    assert_same_run(runs["none"], (resumed, weights))


def test_a_cache_that_does_not_fit_is_refused_in_one_line_before_training(smoke_data_root, tmp_path, monkeypatch):
    monkeypatch.setattr(memory_cache, "available_memory_bytes", lambda: 100_000)
    run = tmp_path / "refused"
    out = run_in_process(["train.py", *SMOKE, "data.cache=memory", f"hydra.run.dir={run}"])
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-3000:]
    (line,) = [line for line in out.stderr.splitlines() if "ERROR" in line]
    # 96 training + 32 validation samples, each measured as stored (40 px: rgb uint8, depth float32, semseg uint8).
    sample = MemoryCachedFolder(views_of(smoke_data_root)["train"].folder).sample_nbytes()
    assert sample == 40 * 40 * (3 + 4 + 1)
    needed = format_bytes(128 * sample)
    assert f"data.cache=memory would hold up to {needed}" in line and "96 training samples" in line
    assert f"the {format_bytes(100_000)} of memory available" in line
    assert "data.cache=none" in line and "data.num_workers" in line
    # Nothing beyond what any run refused while it builds its data writes (here: a data root without its splits).
    other, empty = tmp_path / "other", tmp_path / "empty"
    empty.mkdir()
    refused = run_in_process(["train.py", *SMOKE, "data=folder", f"data.root={empty}", f"hydra.run.dir={other}"])
    assert refused.returncode == 2 and "split folder" in refused.stderr, refused.stderr[-3000:]
    listing = lambda folder: sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))  # noqa: E731
    assert listing(run) == listing(other)
    assert not (run / "config.yaml").exists() and not (run / "checkpoints").exists()


def test_available_memory_is_measured():
    available = memory_cache.available_memory_bytes()
    assert isinstance(available, int) and 0 < available < 2**60
