"""What a real (tiny) pretraining run writes for the report and for people to look at: a score histogram in every
selection record of results.json, and a large, labelled reconstruction figure."""

import pytest
from PIL import Image

from attent_vision.engine.results import read_results
from attent_vision.pretraining.trainer import pretrain
from attent_vision.pretraining.visualize import MIN_TILE
from attent_vision.teaching.score_table import HISTOGRAM_BINS

from conftest import compose_train


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("figures") / "run"
    pretrain(compose_train(["debug=smoke", "trainer.epochs=3", "teaching.total_cycles=2",
                            "interval.max_interval=1"]), run_dir)
    return run_dir


def test_every_selection_record_has_a_histogram_of_the_scores_the_teacher_saw(smoke_run):
    results = read_results(smoke_run / "results.json")
    assert results["selections"]
    for record in results["selections"]:
        hist, stats = record["score_histogram"], record["scores"]
        assert len(hist["counts"]) == HISTOGRAM_BINS and len(hist["edges"]) == HISTOGRAM_BINS + 1
        assert sum(hist["counts"]) == stats["scored"] == results["num_train_samples"]
        assert hist["edges"][0] == pytest.approx(stats["min"]) and hist["edges"][-1] == pytest.approx(stats["max"])


def test_reconstruction_figure_is_large_and_labelled(smoke_run):
    image = Image.open(smoke_run / "reconstructions" / "final.png")
    columns = image.text["columns"].split(" | ")
    assert columns == [f"{modality}: {what}" for modality in ("rgb", "depth", "semseg")
                       for what in ("masked input", "prediction", "target")]
    rows = image.text["rows"].split(" | ")
    assert rows == [f"sample {i}" for i in range(1, len(rows) + 1)] and len(rows) >= 2
    width, height = image.size
    assert width >= len(columns) * MIN_TILE and height >= len(rows) * MIN_TILE
    # The header band above the tiles (which start at the first mostly non-white pixel row) holds dark label text
    # from the first column to the last.
    gray = image.convert("L")
    top = next(y for y in range(height) if sum(gray.getpixel((x, y)) < 250 for x in range(width)) > width / 2)
    inked = [x for x in range(width) if min(gray.getpixel((x, y)) for y in range(top)) < 100]
    assert top >= 20 and inked[0] < width * 0.2 and inked[-1] > width * 0.8
