"""Stopping cleanly when a scheduler or a user asks: checkpoint after the current step first.

- SIGTERM, SIGINT (preemption, ``scancel``, Ctrl-C) with no launcher in charge: save a checkpoint after the current
  optimizer step and stop; the process exits with 128 + signal number.
- A signal a launcher already handles (submitit installs Python handlers: SIGUSR2 before a SLURM time limit, which
  requeues the job, and SIGTERM on preemption, which it ignores): save a checkpoint, then call the launcher's
  handler. If that handler requeues and exits, the requeued job resumes from a checkpoint at most one step old;
  if it returns, training continues.
- A signal that comes again while the run is stopping (SLURM's ``scancel`` signals the batch shell and the job step,
  a container runtime and a supervisor both forward SIGTERM, a person presses Ctrl-C twice) is the same request: it
  is logged, and the run still stops after the current step with its checkpoint, ``status: interrupted`` and exit
  status 128 + n. Raising KeyboardInterrupt there would leave a traceback, exit status 130 and a results.json that
  still says ``running``. Ctrl-C a third time does stop at once (a person at the terminal who means it, e.g. during
  a long scoring pass), as does ``kill -9``; the last checkpoint written is kept.
"""

import logging
import os
import signal

log = logging.getLogger(__name__)

HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)


class StopRequested:
    """``unit``: what the run finishes before it stops ("step", or the pseudo-labelling's "batch"); ``saves``:
    whether it writes a checkpoint first (what the log lines promise)."""

    def __init__(self, unit: str = "step", saves: str | None = "a checkpoint"):
        self.pending: int | None = None  # a signal received and not yet acted on
        self.stopped_by: int | None = None  # the signal that ended the run
        self.repeated: set[int] = set()  # signals that came again while stopping (logged once each)
        self._previous: dict[int, object] = {}
        self.unit, self.saves = unit, saves
        self._pid = os.getpid()

    def install(self) -> None:
        self._pid = os.getpid()
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
        if os.getpid() != self._pid:
            # A data-loading worker forked after install() inherits the handler; Ctrl-C reaches the whole process
            # group. The main process decides when to stop (and stops the workers): a worker goes on quietly.
            return
        kept = "the last checkpoint written" if self.saves else "every file written"
        if self.pending is not None or self.stopped_by is not None:  # already stopping: the same request
            if signum == signal.SIGINT and signum in self.repeated:  # Ctrl-C a third time: a person wants out now
                raise KeyboardInterrupt(f"Ctrl-C pressed three times: stopping at once (keeping {kept})")
            if signum not in self.repeated:
                self.repeated.add(signum)
                log.warning("received signal %d again: still stopping after the current %s%s (kill -9 stops at "
                            "once, keeping %s)", signum, self.unit, f", with {self.saves}" if self.saves else "",
                            kept)
            return
        first = f"saving {self.saves} after the current {self.unit}" if self.saves else \
            f"stopping after the current {self.unit}"
        log.warning("received signal %d: %s", signum, first)
        self.pending = signum

    def restore_and_resend_late(self) -> None:
        """Give the signals back to their earlier handlers; a signal that arrived after training ended (while the
        run wrote its outputs and results.json) was not acted on: send it again now, so that the process still
        stops as asked (with the default handler: exit 128 + n, and a requeue finds the run finished)."""
        late, self.pending = self.pending, None
        self.restore()
        if late is not None:
            log.warning("signal %d arrived while the run was finishing; its outputs are written, stopping now", late)
            if late == signal.SIGINT:  # Python's own SIGINT handling would print a KeyboardInterrupt traceback
                raise SystemExit(128 + late)
            signal.raise_signal(late)

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
