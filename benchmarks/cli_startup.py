"""How fast does the command line answer? Wall time of ``--help``, ``--cfg job`` and a config error of both entry
points, each against ``python -c "import torch"`` measured in turn with it (A B A B ...), so that the ratio of each
pair is taken on the same machine at the same moment. The goal (docs/benchmarks.md): at most half of importing
torch, which those commands never do (tests/test_cli_imports.py checks that).

    python benchmarks/cli_startup.py              # 7 pairs per command
    python benchmarks/cli_startup.py --runs 15

Prints one Markdown row per command: median seconds of the command and of ``import torch``, and the median and
range of the paired ratios.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
YARDSTICK = [sys.executable, "-c", "import torch"]


def commands(run_dir: str) -> dict[str, list[str]]:
    run = f"hydra.run.dir={run_dir}"
    return {
        "train.py --help": ["train.py", "--help"],
        "finetune.py --help": ["finetune.py", "--help"],
        "train.py --cfg job": ["train.py", "--cfg", "job"],
        "train.py trainer.epochs=-1": ["train.py", "trainer.epochs=-1", run],
        "finetune.py trainer.epochs=-1": ["finetune.py", "trainer.epochs=-1", run],
        "train.py trainer.epohcs=3 (Hydra's error)": ["train.py", "trainer.epohcs=3"],
    }


def wall(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="pairs per command (after one unmeasured warm-up pair)")
    runs = parser.parse_args().runs
    print("| command | command (s, median) | import torch (s, median) | ratio (median) | ratio (min - max) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, args in commands(tmp).items():
            argv = [sys.executable, *args]
            wall(argv), wall(YARDSTICK)  # warm the file cache for both
            pairs = [(wall(argv), wall(YARDSTICK)) for _ in range(runs)]
            ratios = [a / b for a, b in pairs]
            print(f"| `{name}` | {statistics.median(a for a, _ in pairs):.3f} | "
                  f"{statistics.median(b for _, b in pairs):.3f} | {statistics.median(ratios):.3f} | "
                  f"{min(ratios):.3f} - {max(ratios):.3f} |")


if __name__ == "__main__":
    main()
