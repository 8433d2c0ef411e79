"""Teaching under DDP with the gloo backend and two CPU processes: identical subsets on every rank, disjoint rank
shards covering them, each sample scored exactly once, the same loss trajectory as one process, and resumption
from a checkpoint written by two ranks."""

import json

import pytest
from ddp_worker import record_run

from conftest import REPO, close_weights, run_cli, weights

# The repeatability check off (its second scoring would add to the scored samples counted here), except where tested
SMOKE = ["debug=smoke", "trainer.epochs=7", "teaching.repeatability_samples=0"]
TWO_RANKS = ["trainer.micro_batch_size=8"]  # micro-batch 8 on each of 2 ranks == one process with the global batch 16
# Free scores with their refresh of the stalest; the cost cap off (its decisions depend on measured time).
FREE = ["teaching.score_source=training", "teaching.max_scoring_fraction=null"]
# The probes on a small embedded probe set (chunks of probe.batch_size images dealt to the ranks in turn).
PROBES = ["probe=standard", "probe.k=5", "probe.embedded.train_per_class=6", "probe.embedded.val_per_class=5",
          "probe.embedded.nyu_train=10", "probe.embedded.nyu_test=6"]
NEW_OPTIONS = {
    "learnability_unbiased": ["selection=soft", "teaching.score=learnability", "selection.reweight=unbiased",
                              "teaching.reference_max_steps=2", "teaching.reference_cache=false"],
    "prune_progress": ["selection=prune", "teaching.score=progress"],
}
# Every two-rank run of this module, in one launch of two processes (one torch import, one process group).
SCENARIOS = {
    "default": [],
    "stopped": ["trainer.stop_after_steps=7"],
    # free scores normalised by the loss level, summed over ranks: the same levels, hence selections, everywhere
    "free": [*FREE, "selection=hard", "teaching.normalize_free_scores=true"],
    **{name: [*FREE, *options] for name, options in NEW_OPTIONS.items()},
    "capped": ["teaching.score_source=training", "teaching.max_scoring_fraction=1e-9", "selection=hard"],
    # probes, and the repeatability check's second scoring (K=2 draws under shared masks), both sharded
    "probed": [*PROBES, "teaching.repeatability_samples=96", "teaching.score_draws=2", "teaching.shared_mask=true"],
    "rs2": ["selection=rs2"],
}
PROBES_ONLY = {"probes_only": [*PROBES, "probe.batch_size=7"]}  # chunks of 7: an odd count per rank


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """name -> ([rank 0's record, rank 1's record], run folder) for every scenario above."""
    tmp = tmp_path_factory.mktemp("ddp")
    runs = [{"name": name, "run_dir": str(tmp / name), "overrides": [*SMOKE, *TWO_RANKS, *overrides]}
            for name, overrides in SCENARIOS.items()]
    runs += [{"name": name, "probes_only": True, "overrides": [*SMOKE, *overrides]}
             for name, overrides in PROBES_ONLY.items()]
    (tmp / "scenarios.json").write_text(json.dumps(runs))
    done = run_cli(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                    str(REPO / "tests" / "ddp_worker.py"), str(tmp / "out"), str(tmp / "scenarios.json")],
                   env={"OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return {name: ([json.loads((tmp / "out" / name / f"rank{r}.json").read_text()) for r in range(2)], tmp / name)
            for name in [*SCENARIOS, *PROBES_ONLY]}


def one_process(tmp_path, name, overrides):
    """The single-process reference, run in this test process: (its record, its run folder)."""
    return record_run([*SMOKE, *overrides], tmp_path / name), tmp_path / name


@pytest.fixture(scope="module")
def single_and_two_ranks(tmp_path_factory, two_ranks):
    return one_process(tmp_path_factory.mktemp("single"), "single", []), two_ranks["default"]


def test_ranks_hold_identical_subsets_equal_to_the_single_process_selection(single_and_two_ranks):
    (single, _), (ranks, _) = single_and_two_ranks
    assert ranks[0]["subsets"] == ranks[1]["subsets"] == single["subsets"]
    assert any(s is not None for s in single["subsets"].values())


def test_rank_shards_are_disjoint_and_cover_each_epoch(two_ranks):
    ranks, _ = two_ranks["default"]
    for epoch, subset in ranks[0]["subsets"].items():
        shards = [[i for i, w in r["trained"][epoch] if w > 0] for r in ranks]
        assert not set(shards[0]) & set(shards[1])
        expected = list(range(96)) if subset is None else subset
        assert sorted(shards[0] + shards[1]) == sorted(expected)


def test_scoring_visits_each_sample_exactly_once_across_ranks(two_ranks):
    ranks, _ = two_ranks["default"]
    passes = sum(1 for s in ranks[0]["subsets"].values() if s is not None)  # soft re-scores every subset epoch
    together = ranks[0]["scored"] + ranks[1]["scored"]
    assert len(together) == passes * 96 and sorted(together) == sorted(list(range(96)) * passes)
    assert len(ranks[0]["scored"]) == len(ranks[1]["scored"])  # an even split


def test_two_ranks_follow_the_single_process_loss_trajectory(single_and_two_ranks):
    (single, single_dir), (ranks, ddp_dir) = single_and_two_ranks
    for a, b in zip(single["history"], ranks[0]["history"]):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4)
    assert close_weights(weights(single_dir), weights(ddp_dir))


def test_resuming_a_two_rank_checkpoint_continues_correctly(single_and_two_ranks, two_ranks):
    (single, single_dir), _ = single_and_two_ranks
    stopped, run_dir = two_ranks["stopped"]
    assert stopped[0]["status"] == "interrupted"
    # Continue on one process: the global batch does not depend on the number of ranks.
    resumed = record_run(SMOKE, run_dir)
    assert resumed["status"] == "completed" and resumed["subsets"].keys() <= single["subsets"].keys()
    assert [h["train_loss"] for h in resumed["history"]] == pytest.approx(
        [h["train_loss"] for h in single["history"]], rel=1e-4)
    assert close_weights(weights(single_dir), weights(run_dir))


def test_free_scores_with_refresh_select_the_same_on_both_ranks_as_one_process(tmp_path, two_ranks):
    """Training-step scores are recorded per rank and merged before each selection; the refresh of the stalest
    is sharded; the loss level that normalises them is folded from every rank's share of each step's batch."""
    single, _ = one_process(tmp_path, "free_single", SCENARIOS["free"])
    ranks, _ = two_ranks["free"]
    assert ranks[0]["subsets"] == ranks[1]["subsets"] == single["subsets"]
    assert ranks[0]["history"] and [r["status"] for r in ranks] == ["completed"] * 2
    together = ranks[0]["scored"] + ranks[1]["scored"]
    assert len(together) == len(single["scored"]) == 2 * 10  # two selections (hard), ceil(0.1 x 96) each
    assert sorted(together) == sorted(single["scored"])  # the same stalest samples, each scored once


@pytest.mark.parametrize("name", list(NEW_OPTIONS))
def test_new_scores_and_prune_select_the_same_on_both_ranks_as_one_process(tmp_path, two_ranks, name):
    """The reference model (trained on every rank, rank 0's weights kept), the score history merged across ranks,
    and the weighted subsets: two ranks must choose what one process chooses."""
    single, single_dir = one_process(tmp_path, "single", SCENARIOS[name])
    ranks, ddp_dir = two_ranks[name]
    assert ranks[0]["subsets"] == ranks[1]["subsets"] == single["subsets"]
    assert any(s for s in single["subsets"].values())
    one, two = (json.loads((d / "results.json").read_text())["selections"] for d in (single_dir, ddp_dir))
    assert len(one) == len(two)
    for a, b in zip(one, two):  # scores differ by reduction order only, so the inclusion probabilities barely do
        assert a["weights"] == pytest.approx(b["weights"], rel=1e-4)


def test_the_scoring_cap_decides_the_same_on_both_ranks(two_ranks):
    """A cap of 1e-9 of the wall time skips every refresh whatever the timings: both ranks must agree, and still
    select (from the free training-step scores alone)."""
    ranks, run_dir = two_ranks["capped"]
    assert ranks[0]["subsets"] == ranks[1]["subsets"] and any(s for s in ranks[0]["subsets"].values())
    assert ranks[0]["scored"] == ranks[1]["scored"] == []
    results = json.loads((run_dir / "results.json").read_text())
    assert [s["refresh_decision"] for s in results["selections"]] == ["skipped by cap"] * 2


def test_probes_give_the_same_numbers_sharded_over_two_ranks_as_in_one_process(two_ranks):
    """The probe features are encoded in chunks dealt to the ranks and gathered: the numbers equal those of one
    process encoding every chunk itself, to the bit, on both ranks."""
    (rank0, rank1), _ = two_ranks["probes_only"]
    assert set(rank0["sharded"]) == {"probe_knn_top1", "probe_linear_top1", "probe_depth_delta1",
                                     "probe_depth_abs_rel"}
    assert rank0["sharded"] == rank0["alone"] == rank1["sharded"] == rank1["alone"]



@pytest.fixture(scope="module")
def probed_single(tmp_path_factory):
    return one_process(tmp_path_factory.mktemp("probed"), "single", SCENARIOS["probed"])


def test_probes_and_compute_of_a_two_rank_pretraining_match_one_process(probed_single, two_ranks):
    """Inside training too: both ranks report the same probes, and results.json's compute (counts over ranks,
    FLOPs per sample whatever the micro-batch) equals one process's."""
    _, single_dir = probed_single
    ranks, ddp_dir = two_ranks["probed"]
    probes = [{k: v for k, v in r["history"][-1].items() if k.startswith("probe_")} for r in ranks]
    assert probes[0] == probes[1] and len(probes[0]) == 4
    one, two = (json.loads((d / "results.json").read_text())["compute"] for d in (single_dir, ddp_dir))
    assert one == two and one["probe_samples"] == 10 * 11 + 16 and one["scored_samples"] > 0


def test_rs2_draws_a_fresh_subset_every_subset_epoch_the_same_on_two_ranks_as_one_process(tmp_path, two_ranks):
    """RS2 (selection=rs2): a new uniform subset before every subset epoch, consecutive slices of one permutation
    (no sample twice before every sample once), no scoring at all; identical on both ranks and in one process."""
    single, _ = one_process(tmp_path, "rs2_single", SCENARIOS["rs2"])
    ranks, _ = two_ranks["rs2"]
    assert ranks[0]["subsets"] == ranks[1]["subsets"] == single["subsets"]
    subsets = [s for s in single["subsets"].values() if s is not None]
    assert len(subsets) == 3 and all(a != b for a, b in zip(subsets, subsets[1:]))  # a fresh draw every subset epoch
    first, second, third = subsets  # 19 + 76 + 76 samples of 96
    assert len(set(first) | set(second)) == len(first) + len(second) == 95  # without replacement in a pass ...
    assert set(first) | set(second) | set(third) == set(range(96))  # ... and every sample before any twice
    assert ranks[0]["scored"] == ranks[1]["scored"] == single["scored"] == []


def test_the_repeatability_check_measures_the_same_on_two_ranks_as_one_process(probed_single, two_ranks):
    """The check's second scoring (K=2 draws under shared masks) is sharded like a scoring pass; every rank
    records the same numbers, and one process the same up to float rounding."""
    single, _ = probed_single
    ranks, _ = two_ranks["probed"]
    assert ranks[0]["repeatability"] == ranks[1]["repeatability"] and len(single["repeatability"]) == 3
    for one, two in zip(single["repeatability"], ranks[0]["repeatability"]):
        assert one["samples"] == two["samples"] == 96 and one["draws"] == 2
        assert one["spearman"] == pytest.approx(two["spearman"], abs=0.02)

