"""The ``attent-report`` command: build the report of a multirun folder (or any run folders) and say what it wrote."""

import argparse
import sys
from pathlib import Path

from ..errors import UserError
from .collect import left_out_markdown, read_runs
from .paper_table3 import FILES as TABLE3_FILES
from .paper_table3 import write_table3
from .plots import PLOTS, plot
from .tables import aggregate, run_row, to_markdown, write_csv

USAGE = """examples:
  attent-report multirun/2026-11-28_21-29-51                 # writes the files below into that folder
  attent-report outputs/a outputs/b --out reports/ablation   # any run folders, into reports/ablation

One row per setting: experiment, ratio, interval, selection, and any other config key in which runs differ (named in
the differs column; only the seed and keys outside the computation, engine/run_identity.py, may differ within a
row). Runs of one setting are averaged over distinct seeds (trainer.seed), with the standard deviation over seeds
as ±; reruns of one seed count once. Runs that did not complete are listed below the table, never averaged in.

writes:
  report.md                      the table (Markdown), and the runs left out with why
  report.csv                     the table with every column's mean and standard deviation
""" + "".join(f"  {name:<30} {what}\n" for name, what in {**TABLE3_FILES, **PLOTS}.items())


def build_report(paths: list[Path], out_dir: Path | None = None) -> dict:
    """Read every results.json under ``paths``; write report.md, report.csv, the paper's Table 3 beside ours (when
    the runs allow it) and the plots to ``out_dir`` (default: the first path). Returns {"rows": aggregated rows,
    "text": report.md, "table3_text": table3_vs_paper.md or "", "files": written paths, ...}."""
    results, left_out, crashed = read_runs(paths)
    rows = aggregate([run_row(r) for r in results])
    out_dir = Path(out_dir or (paths[0] if Path(paths[0]).is_dir() else Path(paths[0]).parent))
    out_dir.mkdir(parents=True, exist_ok=True)
    text = to_markdown(rows)
    if left_out or crashed:
        text += (f"\n{len(left_out) + len(crashed)} run(s) did not complete and are not in the table or the "
                 f"plots:\n\n{left_out_markdown(left_out, crashed)}")
    (out_dir / "report.md").write_text(text)
    write_csv(rows, out_dir / "report.csv")
    table3_text, table3_files = write_table3(rows, out_dir)  # before the plots: written even without matplotlib
    pngs = plot(rows, out_dir)
    return {"rows": rows, "left_out": left_out, "crashed": crashed, "text": text, "table3_text": table3_text,
            "files": [out_dir / "report.md", out_dir / "report.csv", *table3_files, *pngs]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="attent-report", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=USAGE,
        description="The Table-3 report of pretraining runs: a table (Markdown and CSV) and plots.")
    parser.add_argument("paths", nargs="+", type=Path, help="multirun folders, run folders or results.json files")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: the first path)")
    args = parser.parse_args(argv)
    try:
        report = build_report(args.paths, args.out)
    except UserError as e:
        sys.stderr.write(f"error: {e}\n")
        sys.exit(UserError.exit_code)
    sys.stdout.write(report["text"])
    if report["table3_text"]:
        sys.stdout.write("\n" + report["table3_text"])
    sys.stdout.write("\nwrote " + ", ".join(str(p) for p in report["files"]) + "\n")
