"""The pretraining stage's representation probes (``probe.kinds``, attent_vision/probes/): when they run and
where their numbers go.

They run after the last epoch, every ``probe.every_epochs`` epochs, and with ``probe.at_start`` on the untrained
encoder too; their metrics join that epoch's history entry (so resumed runs keep them) and results.json's
``final`` (and ``initial``). Their time is the ``probe`` phase, apart from training, scoring and validation.
"""

from ..engine.distributed import all_gather_cat
from ..engine.runtime import autocast
from ..probes.suite import ProbeSuite


class PretrainingProbes:
    """Mixed into the Pretrainer (which supplies cfg, model, device, precision, dist, timer, progress)."""

    probes: ProbeSuite | None = None

    def build_probes(self) -> None:
        """The suite, its probe sets loaded and checked now, so that bad probe input stops the run before it
        trains. Every rank loads (and checks) them at once: a mistake stops every rank alike, never leaving one in
        a collective; a first run on several ranks writes the embedded probe set on each (the first copy renamed
        into place wins, data/cache.py)."""
        cfg = self.cfg
        if not cfg.probe.kinds:
            return
        self.probes = ProbeSuite(cfg.probe, cfg.model.image_size, device=self.device,
                                 autocast=lambda: autocast(self.precision, self.device), rank=self.dist.rank,
                                 world_size=self.dist.world_size, gather=lambda x: all_gather_cat(x, self.dist))
        self.probes.prepare()

    def probes_due(self, epoch: int, last: bool) -> bool:
        """After the last epoch and every probe.every_epochs (never before the first: ``probe.at_start``)."""
        every = self.cfg.probe.every_epochs
        return self.probes is not None and epoch >= 0 and (last or bool(every and (epoch + 1) % every == 0))

    def probe(self) -> dict[str, float]:
        """Every configured probe of the current encoder (eval mode, the ``probe`` phase); {} without probes."""
        if self.probes is None:
            return {}
        was_training = self.model.training
        self.model.eval()
        try:
            with self.timer.phase("probe", sync=True):
                metrics = self.probes.run(self.model)
        finally:
            self.model.train(was_training)
        self.progress.probe_samples += self.probes.images_per_run()  # checkpointed: resumed runs count on
        return metrics

    @property
    def probe_samples(self) -> int:
        """Images the probes encoded over the whole run (results.json compute.probe_samples)."""
        return self.progress.probe_samples

