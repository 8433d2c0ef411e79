"""Runs pretrainings and records what the rank did, for the distributed tests: the subsets the teacher chose, the
samples this rank trained per epoch, and the samples it scored.

    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/ddp_worker.py OUT_DIR SCENARIOS.json

runs every scenario of the JSON list ``[{"name": ..., "run_dir": ..., "overrides": [...]}, ...]`` one after the
other in the same two processes (one launch, one process group, one import of torch for all of them) and writes
``OUT_DIR/<name>/rank<r>.json``. The single-process references call :func:`record_run` in the test process itself.
A scenario with ``"probes_only": true`` trains nothing: it probes one seeded encoder with the features sharded
over the ranks and, in the same process, with one rank's features alone (:func:`record_probes`).
"""

import json
import sys
from pathlib import Path

from attent_vision.engine.sampler import EpochBatchSampler
from attent_vision.pretraining.trainer import Pretrainer

from conftest import compose_train


def record_run(overrides: list[str], run_dir: str | Path) -> dict:
    """One pretraining with ``overrides`` into ``run_dir``; what this rank trained, scored and selected."""
    trainer = Pretrainer(compose_train(overrides), run_dir)
    trained: dict[int, list] = {}
    scored: list[int] = []
    subsets: dict[int, list | None] = {}

    class RecordingSampler(EpochBatchSampler):
        def __iter__(self):
            for micro in super().__iter__():
                trained.setdefault(self.epoch, []).extend([k[0], k[2]] for k in micro)
                yield micro

    trainer.sampler.__class__ = RecordingSampler
    access = trainer.teacher.access
    score_batch = access.per_task_losses
    # The learner's scoring passes only (a reference model's passes hand their model along)
    access.per_task_losses = lambda batch, model=None: (
        scored.extend(batch["index"].tolist()) if model is None else None, score_batch(batch, model))[1]
    choose = trainer.teacher.subset_for_epoch

    def recording_choose(spec, step, resuming=False):
        subset = choose(spec, step, resuming)
        subsets[spec.epoch] = None if subset is None else subset.tolist()
        return subset

    trainer.teacher.subset_for_epoch = recording_choose
    results = trainer.run()
    record = {"rank": trainer.dist.rank, "world_size": trainer.dist.world_size, "trained": trained,
              "scored": scored, "subsets": subsets, "history": results["history"], "status": results["status"],
              "repeatability": [s.get("repeatability") for s in results["selections"]]}
    return json.loads(json.dumps(record))  # epoch keys as strings, as the launched ranks write them


def record_probes(overrides: list[str]) -> dict:
    """The probes of ``overrides`` on a seeded, untrained encoder: sharded across the process group's ranks, and
    computed by this process alone."""
    import torch

    from attent_vision.engine.distributed import all_gather_cat, init_distributed
    from attent_vision.models import create_model
    from attent_vision.probes.suite import ProbeSuite

    cfg = compose_train(overrides)
    dist = init_distributed("cpu")
    torch.manual_seed(0)
    model = create_model(cfg.model.name, image_size=cfg.model.image_size).eval()
    sharded = ProbeSuite(cfg.probe, cfg.model.image_size, rank=dist.rank, world_size=dist.world_size,
                         gather=lambda x: all_gather_cat(x, dist))
    return {"rank": dist.rank, "sharded": sharded.run(model), "alone": ProbeSuite(cfg.probe, cfg.model.image_size)
            .run(model)}


if __name__ == "__main__":
    out_dir, scenarios = Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text())
    for scenario in scenarios:
        if scenario.get("probes_only"):
            record = record_probes(scenario["overrides"])
        else:
            record = record_run(scenario["overrides"], scenario["run_dir"])
        folder = out_dir / scenario["name"]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"rank{record['rank']}.json").write_text(json.dumps(record))
