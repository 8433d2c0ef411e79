"""Finding and reading the runs a report covers: results.json files under run or multirun folders, each run's seed,
and the runs that did not complete (with why)."""

from pathlib import Path

from ..engine.results import COMPLETED, IncompleteResults, read_results, saved_config
from ..errors import UserError


def find_results(paths: list[Path]) -> list[Path]:
    """Every results.json under the given run or multirun folders (or the files themselves)."""
    found = []
    for path in paths:
        path = Path(path)
        if path.is_file():
            found.append(path)
        elif (path / "results.json").is_file():
            found.append(path / "results.json")
        else:
            found += sorted(path.glob("*/results.json")) + sorted(path.glob("*/*/results.json"))
    return found


def jobs_without_results(paths: list[Path]) -> list[Path]:
    """Multirun job folders (they hold Hydra's .hydra/) that never wrote a results.json: jobs that crashed early."""
    jobs = [job for path in map(Path, paths) if path.is_dir() for job in sorted(path.glob("*/.hydra"))]
    return [job.parent for job in jobs if not (job.parent / "results.json").is_file()]


def config_seed(run_dir: Path):
    """``trainer.seed`` of the resolved config a run wrote beside its results.json (None when there is none)."""
    return ((saved_config(run_dir) or {}).get("trainer") or {}).get("seed")


def run_seed(result: dict, results_path: Path):
    """The run's ``trainer.seed``: results.json records it in ``setting.seed``; older files only in config.yaml.
    A run whose seed cannot be found counts as a seed of its own (its folder stands in), never as a rerun."""
    seed = (result.get("setting") or {}).get("seed")
    if seed is None:
        seed = config_seed(Path(results_path).parent)
    return f"unknown ({Path(results_path).parent.name})" if seed is None else seed


def is_pretraining(result: dict) -> bool:
    """A pretraining run's results (files written before results carried a ``stage`` have ``selections``)."""
    return result.get("stage", "pretrain" if "selections" in result else None) == "pretrain"


def read_runs(paths: list[Path]) -> tuple[list[dict], list[dict], list[Path]]:
    """(completed pretraining runs, the other pretraining runs and the results.json files that are not complete
    JSON (status ``unreadable``, ``error`` naming the file), job folders without results.json). Every result
    carries ``seed`` (its trainer.seed); fine-tuning results under the same folders are not part of the report."""
    files = find_results(paths)
    where = ", ".join(map(str, paths))
    if not files:
        raise UserError(f"no results.json under {where}; give a run or multirun folder")
    runs, unreadable = [], []
    for path in files:
        try:
            result = read_results(path)
        except IncompleteResults as e:  # one cut-short file does not stop the report: it lists the run as left out
            unreadable.append(unreadable_run(path, e))
            continue
        if is_pretraining(result):
            config = result.get("config") or saved_config(Path(path).parent)
            # found_dir: where the report found the run (a copied or moved folder's run_dir is where it ran)
            runs.append({**result, "seed": run_seed(result, path), "config": config,
                         "found_dir": str(Path(path).parent)})
    if not runs:
        if unreadable:
            more = f" (and {len(unreadable) - 1} more like it)" if len(unreadable) > 1 else ""
            raise UserError(f"{unreadable[0]['error']}{more}")
        raise UserError(f"no pretraining results.json under {where} (only fine-tuning runs); give a pretraining run "
                        "or multirun folder")
    completed = [r for r in runs if r.get("status") == COMPLETED]
    return completed, [r for r in runs if r.get("status") != COMPLETED] + unreadable, jobs_without_results(paths)


def unreadable_run(path: Path, error: Exception) -> dict:
    """A left-out entry for a results.json that could not be read: its stage and seed are unknown (a fine-tuning
    run's file is listed too, rather than guessed away), ``error`` says why (the left-out table's why column)."""
    return {"run_dir": str(Path(path).parent), "experiment": "?", "seed": "-", "status": "unreadable",
            "error": str(error)}


def why_left_out(result: dict) -> str:
    """Why a run is not in the table, in a few words."""
    status = result.get("status", "unknown")
    if status == "diverged" and result.get("diverged"):
        d = result["diverged"]
        return f"non-finite {d.get('what', 'values')} at step {d.get('step')}"
    if status == "interrupted":
        return f"stopped by a signal or step limit (exit {result.get('exit_code')}); rerun to resume"
    if status == "running":
        return "crashed or still running (results.json says running)"
    return str(result.get("error", status))


def left_out_markdown(results: list[dict], crashed: list[Path]) -> str:
    lines = ["| run | experiment | seed | status | why |", "|---|---|---|---|---|"]
    lines += [f"| {r.get('run_dir', '?')} | {r.get('experiment', '')} | {r.get('seed', '-')} "
              f"| {r.get('status')} | {why_left_out(r)} |" for r in results]
    lines += [f"| {job} | - | - | failed | no results.json (the job crashed before writing one) |" for job in crashed]
    return "\n".join(lines) + "\n"
