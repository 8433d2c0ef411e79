"""The frontier plot: linear-probe top-1 against compute (in full-data training samples), one line per method
through its mean points across budgets, with the spread over seeds as error bars."""

from pathlib import Path


def plot_frontier(summary: dict, path: Path, title: str) -> None:
    """Write ``path`` (PNG) from one regime's ``frontier_math.summarise`` output."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a benchmark machine
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    for method, entry in summary["methods"].items():
        points = entry["budgets"]
        costs = [p["train_equivalents"] for p in points]
        quality = [100 * p["probe_linear_top1"] for p in points]
        spread = [100 * p["quality_std"] for p in points]
        line = ax.errorbar(costs, quality, yerr=spread, fmt="o-", capsize=3, label=method)
        for p, x, y in zip(points, costs, quality):
            ax.annotate(f"{p['budget']:g}x", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7,
                        color=line[0].get_color())
    reference = summary["reference"]["probe_linear_top1"]
    if reference is not None:
        ax.axhline(100 * reference.mean, color="gray", linestyle="--", linewidth=1,
                   label=f"full data at 1x ({100 * reference.mean:.1f}%)")
        ax.axhline(100 * reference.mean - 1, color="gray", linestyle=":", linewidth=1, label="full data - 1 point")
    ax.set_xlabel("compute (training-sample equivalents: training + scoring + reference model)")
    ax.set_ylabel("linear-probe top-1 (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
