"""What a user sees in the terminal: bars for training, scoring and validation passes that log lines print above
(never glued to a bar's half-drawn line, no stale bars left in the scrollback), no bar frames at all when stderr is
a file or a pipe, 1-based epochs wherever an epoch is shown, and a logged loss that says it is the epoch's mean.

The terminal runs are real runs of both stages, in process, with stderr replaced by a stream that says it is a
terminal and the run's log file handler (cli/log_file.py) beside the console handler, as Hydra sets them up."""

import io
import json
import logging
import re
import sys

import pytest

from attent_vision.cli.log_file import RunLogFile
from attent_vision.engine.bars import show_bars

from conftest import compose_train, run_cli

LOG_LINE = re.compile(r"\[\d\d:\d\d:\d\d\]\[(INFO|WARNING)\] ")
BAR_FRAGMENT = re.compile(r"\d+%\||it/s|s/it|\?it")
# Pico at 32 px, batch 32: 10 steps over the 320 embedded training images, then the evaluation pass.
TINY_FINETUNE = ["model.scratch_name=multivit_pico", "model.scratch_patch_size=8", "model.image_size=32",
                 "trainer.batch_size=32", "trainer.epochs=1", "trainer.log_every_steps=4"]


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def screen(raw: str) -> list[str]:
    """The non-blank lines a terminal keeps after printing ``raw``: ``\\r`` returns to the start of the line and the
    next characters overwrite it (how a bar redraws itself and how it is cleared)."""
    assert "\x1b" not in raw  # cursor movements (nested bars) would need a real terminal emulator
    lines, line, col = [], [], 0
    for ch in raw:
        if ch == "\n":
            lines.append("".join(line).rstrip())
            line, col = [], 0
        elif ch == "\r":
            col = 0
        else:
            line[col:col + 1] = [ch]
            col += 1
    lines.append("".join(line).rstrip())
    return [x for x in lines if x]


@pytest.fixture
def console(tmp_path, monkeypatch):
    """Logging as conf/.../job_logging/console.yaml sets it up: a console handler on stderr and the run's log file,
    both with the timestamped formatter. Yields a function that swaps in a stderr stream; returns (stream, log)."""
    added = []
    level = logging.root.level

    def attach(stream: io.StringIO):
        monkeypatch.setattr(sys, "stderr", stream)
        formatter = logging.Formatter("[%(asctime)s][%(levelname)s] %(message)s", "%H:%M:%S")
        for handler in (logging.StreamHandler(sys.stderr), RunLogFile(tmp_path / "run.log")):
            handler.setFormatter(formatter)
            logging.root.addHandler(handler)
            added.append(handler)
        logging.root.setLevel(logging.INFO)
        return stream, tmp_path / "run.log"

    yield attach
    for handler in added:
        logging.root.removeHandler(handler)
        handler.close()
    logging.root.setLevel(level)


def test_bars_show_only_when_enabled_on_rank_0_and_stderr_is_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", FakeTerminal())
    assert show_bars(True, True)
    assert not show_bars(False, True) and not show_bars(True, False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a file or a pipe
    assert not show_bars(True, True)


def test_console_lines_go_through_tqdm_with_the_console_format_and_level(console):
    """While bars may show, the console handler is swapped for tqdm's (same stream, format and level); the log file
    handler stays; on leaving, the handlers are as before. Without bars nothing is swapped."""
    from attent_vision.engine.bars import console_logs_above_bars, progress_bar

    stream, log_file = console(FakeTerminal())
    before = list(logging.root.handlers)
    logging.root.handlers[-2].setLevel(logging.WARNING)  # the console handler shows warnings only
    with console_logs_above_bars(False):
        assert logging.root.handlers == before
    with console_logs_above_bars(True):
        assert len(logging.root.handlers) == len(before) and before[-1] in logging.root.handlers  # the file stays
        bar = progress_bar(total=3, desc="pass", show=True)
        bar.update(1)
        logging.getLogger("attent_vision.test").info("info line")
        logging.getLogger("attent_vision.test").warning("warning line")
        bar.close()
    assert logging.root.handlers == before
    shown = screen(stream.getvalue())
    assert len(shown) == 1 and LOG_LINE.match(shown[0]) and shown[0].endswith("] warning line"), shown
    assert [x.split("] ", 1)[1] for x in log_file.read_text().splitlines()] == ["info line", "warning line"]


def check_terminal(raw: str, log_file) -> list[str]:
    """Every line the terminal keeps is a log line as the log file has it: none glued to a bar, no bar left over."""
    file_lines = log_file.read_text().splitlines()
    assert "\r" not in log_file.read_text() and not any(BAR_FRAGMENT.search(x) for x in file_lines)
    shown = screen(raw)
    assert not [x for x in shown if BAR_FRAGMENT.search(x)]
    assert shown == file_lines
    return [x for x in shown if LOG_LINE.match(x)]


def test_pretraining_bars_in_a_terminal_keep_log_lines_whole_and_epochs_1_based(tmp_path, console):
    from attent_vision.pretraining.trainer import pretrain

    raw, log_file = console(FakeTerminal())
    # 1 full epoch, then one cycle: a selection (a scoring pass) before the subset epoch 2; validation every epoch.
    cfg = compose_train(["debug=smoke", "selection=soft", "trainer.epochs=3", "teaching.total_cycles=1",
                         "trainer.progress_bar=true", "trainer.log_every_steps=2", "data.max_val_samples=16",
                         "checkpoint.every_epochs=0"])
    result = pretrain(cfg, tmp_path / "run")
    assert result["status"] == "completed"
    raw = raw.getvalue()
    lines = check_terminal(raw, log_file)
    # The bars were drawn: training epochs (1-based, of 3), the scoring pass and validation.
    for desc in ("epoch 1/3", "epoch 3/3", "scoring 96 samples", "validation"):
        assert f"\r{desc}:" in raw, desc
    assert "epoch 0" not in raw
    steps = [x for x in lines if " step " in x]
    assert steps and all(re.search(r"\| loss \d+\.\d{4} \(epoch mean so far: rgb ", x) for x in steps), steps
    assert any("epoch 1/3 [full] step 2/6" in x for x in steps)
    assert [int(m.group(1)) for x in lines if (m := re.search(r"epoch (\d)/3 done", x))] == [1, 2, 3]
    assert any("cycle 1 epoch 2: selected" in x for x in lines)
    assert [h["epoch"] for h in json.loads((tmp_path / "run" / "results.json").read_text())["history"]] == [1, 2, 3]


def test_fine_tuning_bars_in_a_terminal_keep_log_lines_whole(tmp_path, console):
    from attent_vision.finetuning.suite import compose_finetune
    from attent_vision.finetuning.trainer import finetune

    raw, log_file = console(FakeTerminal())
    cfg = compose_finetune("imagenet_s50_cls", None, [*TINY_FINETUNE, "trainer.progress_bar=true"])
    assert finetune(cfg, tmp_path / "run")["status"] == "completed"
    raw = raw.getvalue()
    lines = check_terminal(raw, log_file)
    assert "\repoch 1/1:" in raw and "\revaluation:" in raw
    steps = [x for x in lines if " step " in x]
    assert steps and all(re.search(r"epoch 1/1 step \d+/10 \| loss \d+\.\d{4} \(epoch mean so far\) \|", x)
                         for x in steps), steps


def test_no_bar_frames_when_stderr_is_not_a_terminal(tmp_path, console):
    """stderr redirected to a file or a pipe (SLURM, nohup, tee): bars stay off though the config enables them;
    the console gets exactly the log file's lines."""
    from attent_vision.pretraining.trainer import pretrain

    stream, log_file = console(io.StringIO())
    cfg = compose_train(["debug=smoke", "trainer.epochs=3", "teaching.total_cycles=1", "trainer.progress_bar=true",
                         "data.max_val_samples=16", "checkpoint.every_epochs=0"])
    assert pretrain(cfg, tmp_path / "run")["status"] == "completed"
    out = stream.getvalue()
    assert "\r" not in out and not BAR_FRAGMENT.search(out)
    assert out.splitlines() == log_file.read_text().splitlines() and "epoch 3/3 done" in out


def test_a_fine_tune_captured_through_a_pipe_has_no_bar_frames(tmp_path):
    """The reported case: finetune.py with stderr to a pipe drew its bar anyway, filling logs with \\r frames."""
    out = run_cli(["finetune.py", *TINY_FINETUNE, "trainer.progress_bar=true", f"hydra.run.dir={tmp_path}"])
    assert out.returncode == 0, out.stderr[-2000:]
    log_text = (tmp_path / "finetune.log").read_text()
    for text in (out.stderr, log_text):
        assert "\r" not in text and not BAR_FRAGMENT.search(text)
        assert "epoch 1/1 step 10/10 | loss" in text and "(epoch mean so far)" in text


def test_the_plan_table_numbers_epochs_from_1():
    from attent_vision.teaching.plan import build_plan

    plan = build_plan(num_samples=96, epochs=7, strategy="soft", total_cycles=2, initial_interval=1, max_interval=2)
    rows = plan.table(16).splitlines()
    ranges = [tuple(map(int, m.groups())) for row in rows[1:] if (m := re.match(r"\s*\S+\s+(\d+)-(\d+)\s", row))]
    assert ranges[0] == (1, 1) and ranges[-1][1] == 7  # the initial full epoch is epoch 1, the last is epoch 7
    assert all(b[0] == a[1] + 1 for a, b in zip(ranges, ranges[1:]))  # contiguous, none skipped or shared
