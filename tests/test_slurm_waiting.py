"""How attent-vision's SLURM launcher waits for a sweep's jobs (attent_vision/cli/slurm_jobs.py), with jobs and a
queue made up here: every job is waited for, a job that leaves the queue without a result is named once it has
been gone for the grace period, a job that comes back (requeued) is not, and squeue failing takes no job for
gone. The same loop through a real cluster: tests/test_slurm.py."""

import logging
from pathlib import Path
from types import SimpleNamespace

from attent_vision.cli import slurm_jobs


class Job:
    """A submitit Job as the loop sees it: done after ``done_after`` looks, then its result."""

    def __init__(self, job_id, done_after=None, result=None):
        self.job_id, self.done_after, self.result, self.looks = job_id, done_after, result, 0
        self.paths = SimpleNamespace(stderr=Path(f"/sweep/.submitit/{job_id}/{job_id}_0_log.err"))

    def done(self):
        self.looks += 1
        return self.done_after is not None and self.looks > self.done_after

    def results(self):
        return [self.result]


class Clock:
    """time.monotonic and time.sleep for the loop: a second per poll, whatever the machine's speed."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_every_job_is_waited_for_and_only_one_gone_for_the_grace_period_is_named(monkeypatch, caplog):
    monkeypatch.setattr(slurm_jobs, "time", Clock())  # polls every 1 s, squeue every 5 s, 15 s grace
    finishes = Job("7_0", done_after=60, result="a")
    requeued = Job("7_1", done_after=50, result="b")  # out of the queue at 15-20 s and 35-45 s: never 15 s on end
    cancelled = Job("7_2")  # never a result; out of the queue from 15 s on: named at 35 s
    both, first = {"7_0", "7_1"}, {"7_0"}
    answers = iter([None, None, first, first, both, both, first, first, first])  # squeue fails at 5 and 10 s
    monkeypatch.setattr(slurm_jobs, "queued_jobs", lambda: next(answers, both))
    with caplog.at_level(logging.ERROR, logger="attent_vision"):
        returned = slurm_jobs.wait_for_results({0: finishes, 1: requeued, 2: cancelled})
    assert returned == ["a", "b"]
    assert [r.getMessage() for r in caplog.records] == [
        "job 2 (SLURM job 7_2) ended without a result (it left the queue without one): cancelled, killed (time, "
        "memory) or its node failed; its log: /sweep/.submitit/7_2/7_2_0_log.err"]
    assert cancelled.looks == 36  # at 0, 1, ..., 35 s


def test_a_job_that_raised_is_one_line_with_its_exception(caplog):
    from submitit.core.utils import FailedJobError

    class Raised(Job):
        def results(self):
            rule = "----------------------\n"
            trace = 'Traceback (most recent call last):\n  File "x.py", line 1\nZeroDivisionError: division by zero\n'
            raise FailedJobError(f"Job (task=0) failed during processing with trace:\n{rule}{trace}{rule}You can check "
                                 "full logs with 'job.stderr(0)' and 'job.stdout(0)'or at paths:\n  - a\n  - b")

    with caplog.at_level(logging.ERROR, logger="attent_vision"):
        assert slurm_jobs.wait_for_results({3: Raised("9", done_after=0)}, watch_queue=False) == []
    assert [r.getMessage() for r in caplog.records] == [
        "job 3 (SLURM job 9) raised ZeroDivisionError: division by zero; its log: /sweep/.submitit/9/9_0_log.err"]
