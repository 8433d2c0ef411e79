"""The Table-3 report: pretraining runs (a multirun folder or several run folders) as one table and plots.

    attent-report multirun/2026-11-28_21-29-51                 # writes report.md, report.csv, *.png there
    attent-report outputs/a outputs/b --out reports/ablation   # any run folders

``collect`` finds and reads the runs (results.json, each run's seed), ``tables`` turns them into rows (one per
setting, averaged over distinct seeds; reruns of a seed count once) as Markdown and CSV, ``plots`` draws them
(matplotlib, the optional ``report`` extra), ``cli`` is the command. Columns: experiment, setting, seeds, wall
time (and relative to the full-data row), its split into training, scoring, data waiting and evaluation, samples
seen and scored, optimizer steps, the final validation loss, and downstream metrics when the runs fine-tuned at
the end (``downstream.tasks``). Only completed runs enter the table and the plots: a diverged, interrupted, failed
or still-running run (and a multirun job folder without results.json) is listed below the table with why.
"""

from .cli import build_report, main
from .collect import find_results, is_pretraining, jobs_without_results, read_runs, why_left_out
from .plots import PLOTS, curves, step_rate
from .tables import (
                     DOWNSTREAM_COLUMNS,
                     NUMERIC,
                     TABLE3_ORDER,
                     aggregate,
                     downstream_metric,
                     run_row,
                     setting_key,
                     to_markdown,
                     write_csv,
)

__all__ = ["DOWNSTREAM_COLUMNS", "NUMERIC", "PLOTS", "TABLE3_ORDER", "aggregate", "build_report", "curves",
           "downstream_metric", "find_results", "is_pretraining", "jobs_without_results", "main", "read_runs",
           "run_row", "setting_key", "step_rate", "to_markdown", "why_left_out", "write_csv"]
