"""The pretraining stage as the teacher sees it: a :class:`~attent_vision.teaching.Learner` over the stage's model,
scoring view, ranks and timers. The teacher runs every scoring pass through it; nothing here selects or scores."""

from contextlib import contextmanager

import torch

from ..engine.bars import progress_bar
from ..engine.distributed import all_gather_cat
from ..engine.loaders import make_loader
from ..engine.sampler import ShardedBatches
from ..teaching import Learner


class PretrainLearner(Learner):
    """The MultiMAE of a :class:`~attent_vision.pretraining.trainer.Pretrainer` (``stage``), for the teacher."""

    def __init__(self, stage):
        self.stage = stage
        self.score_loader = None  # built on the first scoring pass (strategies without scores never need it)

    def pass_loader(self, view, indices: torch.Tensor):
        """A loader for no-grad passes over ``indices`` of ``view``, sharded across ranks, built once and reused
        (its workers persist between passes)."""
        s = self.stage
        bs = s.cfg.teaching.scoring_batch_size or s.cfg.trainer.eval_batch_size
        sampler = ShardedBatches(indices, bs, rank=s.dist.rank, world_size=s.dist.world_size)
        return make_loader(view, sampler, s.cfg.data, s.device, s.cfg.trainer.seed)

    def score_batches(self, indices: torch.Tensor, epoch: int, draw: int = 0):
        if self.score_loader is None:
            self.score_loader = self.pass_loader(self.stage.views["score"], indices)
        # The epoch indexes the training-distribution view's random stream (scoring_view=paper, and refreshes of
        # free scores) and the shared masks; the deterministic view's per-sample masks ignore it. ``draw`` numbers
        # the independent draws of a K-draw pass.
        self.score_loader.batch_sampler.set_pass(indices, epoch, draw)
        return progress_bar(self.score_loader, desc=f"scoring {indices.numel()} samples", show=self.stage.show_bars)

    def per_task_losses(self, batch: dict, model=None) -> torch.Tensor:
        s = self.stage
        return s.task_matrix(s.forward(model if model is not None else s.model, batch)[2], "score")

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        return all_gather_cat(x, self.stage.dist)

    @contextmanager
    def inference(self):
        """A scoring pass: evaluation mode, its time charged to the ``scoring`` phase."""
        with self.stage.timer.phase("scoring", sync=True), self.stage.evaluation_mode():
            yield

    @contextmanager
    def measurement(self):
        """The repeatability check: evaluation mode, its time charged to ``eval`` (a measurement, like validation:
        not the method's cost, and outside the scoring cap's arithmetic)."""
        with self.stage.timer.phase("eval", sync=True), self.stage.evaluation_mode():
            yield

    def synchronize(self) -> None:
        if self.stage.device.type == "cuda":
            torch.cuda.synchronize(self.stage.device)

    def work_so_far(self) -> tuple[float, int]:
        """Seconds this run has spent training, waiting for data and scoring (not start-up, validation or
        checkpoints), and the samples trained: what the cost cap on scoring compares against."""
        t = self.stage.timer.totals
        return t["train"] + t["data_wait"] + t["scoring"], self.stage.progress.samples_seen

    def reference_model(self):
        """learnability's reference model (reference.py), trained on the holdout or reused from the cache; its whole
        training cost is charged to this run's compute whether or not another run of the sweep trained it."""
        from .reference import reference_model  # only runs with a reference model need it

        model, _, info = reference_model(self.stage)
        self.stage.progress.reference_trained_samples += info["trained_samples"]
        return model, {**info, "holdout_samples": len(self.stage.views["reference"])}
