"""How often each sample was chosen against how it scored: one panel per setting, from the run's ``selections.npz``
(pretraining/sample_record.py documents its arrays). A method that selects by score puts the often-chosen samples
at the high percentiles; random selection spreads them evenly. Read with numpy only: the report needs no torch."""

from pathlib import Path

import numpy as np

from .tables import seed_list

FILE_NAME = "selections.npz"  # written by the pretraining stage beside results.json
PLOT_NAME = "chosen_vs_score.png"


def selection_arrays(result: dict) -> dict[str, np.ndarray] | None:
    """The arrays of a run's selections.npz, or None when it has none (older runs, no selections)."""
    path = Path(result.get("found_dir") or result.get("run_dir", "")) / FILE_NAME
    if not path.is_file():
        return None
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    return arrays if arrays.get("selection_epochs", np.empty(0)).size else None


def chosen_and_percentile(arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(times chosen (N), mean score percentile (N) over the selections that scored the sample; NaN when none did).
    A percentile is the sample's rank among the finite scores of one selection, 0 = lowest, 1 = highest."""
    n = int(arrays["num_samples"])
    chosen, percentile_sum, scored = np.zeros(n), np.zeros(n), np.zeros(n)
    for i in range(arrays["selection_epochs"].size):
        chosen[arrays[f"selection_{i}"]] += 1
        scores = arrays.get(f"scores_{i}")
        if scores is None:
            continue
        finite = np.isfinite(scores)
        ranks = np.empty(n)
        ranks[finite] = scores[finite].argsort().argsort() / max(int(finite.sum()) - 1, 1)
        percentile_sum[finite] += ranks[finite]
        scored += finite
    with np.errstate(invalid="ignore", divide="ignore"):
        return chosen, np.where(scored > 0, percentile_sum / scored, np.nan)


def plot_chosen_vs_score(plt, rows: list[dict], out_dir: Path) -> Path | None:
    """One panel per row (its lowest seed with a selections.npz whose selections used scores)."""
    shown = []
    for row in rows:
        order = seed_list(run["seed"] for run in row["runs"])
        for run in sorted(row["runs"], key=lambda r: order.index(r["seed"])):
            arrays = selection_arrays(run["result"])
            if arrays is not None and any(k.startswith("scores_") for k in arrays):
                shown.append((row, run, *chosen_and_percentile(arrays)))
                break
    if not shown:
        return None
    cols = min(4, len(shown))
    nrows = -(-len(shown) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.4 * cols, 2.8 * nrows + 0.6), squeeze=False,
                             layout="constrained")
    rng = np.random.default_rng(0)  # vertical jitter only, so that equal counts do not hide each other
    for ax, (row, run, chosen, percentile) in zip(axes.flat, shown):
        keep = np.isfinite(percentile)
        ax.scatter(percentile[keep], chosen[keep] + rng.uniform(-0.2, 0.2, int(keep.sum())), s=3, alpha=0.3,
                   linewidths=0)
        ax.set_title(f"{row['label']} (seed {run['seed']})", fontsize=9)
        ax.set_xlabel("mean score percentile (1 = highest)", fontsize=8)
        ax.set_ylabel("selections that chose it", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(shown):]:
        ax.set_visible(False)
    fig.suptitle("How often each sample was chosen, against its score", fontsize=10)
    path = out_dir / PLOT_NAME
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
