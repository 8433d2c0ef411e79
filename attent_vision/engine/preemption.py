"""Stopping cleanly when a scheduler or a user asks: checkpoint after the current step first.

- SIGTERM, SIGINT (preemption, ``scancel``, Ctrl-C) with no launcher in charge: save a checkpoint after the current
  optimizer step and stop; the process exits with 128 + signal number.
- A signal a launcher already handles (submitit installs Python handlers: SIGUSR2 before a SLURM time limit, which
  requeues the job, and SIGTERM on preemption, which it ignores): save a checkpoint, then call the launcher's
  handler. If that handler requeues and exits, the requeued job resumes from a checkpoint at most one step old;
  if it returns, training continues.
- A second signal before the first was acted on stops at once.
"""

import logging
import signal

log = logging.getLogger(__name__)

HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)


class StopRequested:
    def __init__(self):
        self.pending: int | None = None  # a signal received and not yet acted on
        self.stopped_by: int | None = None  # the signal that ended the run
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        for sig in HANDLED:
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (some launchers): keep the default handling
                pass

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        if self.pending is not None:
            raise KeyboardInterrupt(f"second signal {signum}: stopping without a checkpoint")
        log.warning("received signal %d: saving a checkpoint after the current step", signum)
        self.pending = signum

    def launcher_handles(self, signum: int) -> bool:
        """Whether a launcher (e.g. submitit) installed its own Python handler for ``signum`` before us."""
        return callable(self._previous.get(signum)) and signum != signal.SIGINT

    def act(self) -> bool:
        """Call after the checkpoint for the pending signal is saved. Returns True when training must stop."""
        signum, self.pending = self.pending, None
        if signum is None:
            return False
        if self.launcher_handles(signum):
            log.warning("checkpoint saved; handing signal %d to the launcher", signum)
            self._previous[signum](signum, None)  # submitit requeues and exits here on SIGUSR2
            return False
        self.stopped_by = signum
        return True

    @property
    def exit_code(self) -> int:
        """128 + signal number, the shell convention, so schedulers see that the run did not finish."""
        return 128 + self.stopped_by if self.stopped_by else 0
