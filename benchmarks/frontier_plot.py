"""The frontier plot: validation loss against training wall time, one line per method through its mean points
across epoch budgets, with the spread over seeds as a band."""

from pathlib import Path


def plot_frontier(summary: dict, path: Path, title: str) -> None:
    """Write ``path`` (PNG) from one regime's ``frontier_math.summarise`` output."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a benchmark machine
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    for method, entry in summary["methods"].items():
        points = entry["budgets"]
        walls = [p["wall_s"]["mean"] for p in points]
        losses = [p["val_loss"]["mean"] for p in points]
        wall_std = [p["wall_s"]["std"] or 0.0 for p in points]
        loss_std = [p["val_loss"]["std"] or 0.0 for p in points]
        if len(points) == 1:  # a reference-only method: one point, its spread over seeds in both directions
            line = ax.errorbar(walls, losses, xerr=wall_std, yerr=loss_std, fmt="D", capsize=3, label=method)
            color = line[0].get_color()
        else:
            (line,) = ax.plot(walls, losses, "o-", label=method)
            color = line.get_color()
            ax.fill_between(walls, [m - s for m, s in zip(losses, loss_std)],
                            [m + s for m, s in zip(losses, loss_std)], color=color, alpha=0.15, linewidth=0)
        for p, x, y in zip(points, walls, losses):
            ax.annotate(f"{p['budget']:g}x", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7,
                        color=color)
    reference = summary["reference"]["val_loss"]["mean"]
    ax.axhline(reference, color="gray", linestyle="--", linewidth=1, label=f"full data at 1x ({reference:.4f})")
    ax.set_xlabel("wall time (s, excluding validation)")
    ax.set_ylabel("final validation loss")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
