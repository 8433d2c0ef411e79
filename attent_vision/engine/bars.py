"""Progress bars (tqdm) for every pass of a run: training epochs, scoring passes, validation and evaluation.

One rule decides whether any bar shows (``show_bars``): ``trainer.progress_bar`` is on, this is rank 0, and stderr
is a terminal. Redirected to a file or a pipe (SLURM, nohup, ``2>&1 | tee``), a bar would write each of its frames
as a ``\\r`` line into the log, so there it stays off and the periodic log lines carry the progress.

While bars can show, console log lines go through ``tqdm.write`` (``tqdm.contrib.logging``): it clears the bar,
prints the line and redraws the bar below it, instead of gluing the line to the end of the bar's half-drawn line.
The run's log file handler is left as it is, so the file keeps every line and never sees a bar.
"""

import logging
import sys
from contextlib import contextmanager
from typing import Iterable, Iterator

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm


def show_bars(enabled: bool, is_main: bool) -> bool:
    """Whether this process draws bars: enabled in the config, rank 0, and stderr is a terminal."""
    return bool(enabled) and is_main and sys.stderr.isatty()


def progress_bar(iterable: Iterable | None = None, *, desc: str, show: bool, **kwargs) -> tqdm:
    """A bar on stderr that disappears when its pass ends (``leave=False``): the log lines are the record; a
    finished bar would only pile up in the scrollback."""
    return tqdm(iterable, desc=desc, disable=not show, leave=False, dynamic_ncols=True, file=sys.stderr, **kwargs)


def _console_handlers(logger: logging.Logger) -> list[logging.Handler]:
    """The handlers tqdm.contrib.logging replaces: stream handlers writing to the terminal (not files)."""
    return [h for h in logger.handlers if isinstance(h, logging.StreamHandler) and h.stream in (sys.stdout, sys.stderr)]


@contextmanager
def console_logs_above_bars(show: bool) -> Iterator[None]:
    """Route the root logger's console lines through ``tqdm.write`` while bars may show (formatter and filters
    are tqdm's copy of the console handler's; its level is copied here). Without a console handler (logging set
    up elsewhere, or the console stream replaced after set-up) nothing changes: tqdm would add a second one."""
    root = logging.getLogger()
    console = _console_handlers(root)
    if not show or not console:
        yield
        return
    before = list(root.handlers)
    with logging_redirect_tqdm([root]):
        for handler in root.handlers:
            if handler not in before:  # tqdm's handler: show what the console showed, no more
                handler.setLevel(console[0].level)
        yield
