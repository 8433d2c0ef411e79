"""Runs one pretraining (single process, or one rank under torchrun) and records what the rank did, for the
distributed tests: the subsets the teacher chose, the samples this rank trained per epoch, and the samples it
scored. Usage: python tests/ddp_worker.py OUT_DIR RUN_DIR [overrides...]"""

import json
import sys
from pathlib import Path

from attent_vision.engine.sampler import EpochBatchSampler
from attent_vision.pretraining.trainer import Pretrainer
from conftest import compose_train

out_dir, run_dir, *overrides = sys.argv[1:]
trainer = Pretrainer(compose_train(overrides), run_dir)
trained: dict[int, list] = {}
scored: list[int] = []
subsets: dict[int, list] = {}


class RecordingSampler(EpochBatchSampler):
    def __iter__(self):
        for micro in super().__iter__():
            trained.setdefault(self.epoch, []).extend([k[0], k[2]] for k in micro)
            yield micro


trainer.sampler.__class__ = RecordingSampler
access = trainer.teacher.access
score_batch = access.per_task_losses
access.per_task_losses = lambda batch: (scored.extend(batch["index"].tolist()), score_batch(batch))[1]
choose = trainer.teacher.subset_for_epoch


def recording_choose(spec, step, resuming=False):
    subset = choose(spec, step, resuming)
    subsets[spec.epoch] = None if subset is None else subset.tolist()
    return subset


trainer.teacher.subset_for_epoch = recording_choose
results = trainer.run()
record = {"rank": trainer.dist.rank, "world_size": trainer.dist.world_size, "trained": trained, "scored": scored,
          "subsets": subsets, "history": results["history"], "status": results["status"]}
Path(out_dir).mkdir(parents=True, exist_ok=True)
(Path(out_dir) / f"rank{trainer.dist.rank}.json").write_text(json.dumps(record))
