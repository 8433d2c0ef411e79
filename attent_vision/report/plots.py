"""The report's plots, drawn from the table's rows (one colour and one legend entry per row, whatever its number of
runs). matplotlib is an optional dependency (the ``report`` extra), imported only when plotting."""

from pathlib import Path

from ..extras import require
from ..teaching.selection_record import records_of
from .tables import seed_list

# Every plot the report may write, with what it shows (the command's --help lists them from here).
PLOTS = {
    "val_loss_vs_wall_time.png": "validation loss against wall time, one curve per run",
    "val_loss_vs_samples_seen.png": "validation loss against training samples seen, one curve per run",
    "throughput.png": "training-step and scoring-pass throughput (samples/s) per epoch",
    "score_histograms.png": "the scores each selection chose from, one panel per setting (runs that recorded "
                            "score histograms only)",
    "chosen_vs_score.png": "how often each sample was chosen against its mean score percentile, one panel per "
                           "setting (runs with a selections.npz of scored selections)",
}


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend, or a MissingExtra (a UserError) saying how to install it."""
    require("matplotlib", "report", "attent-report's plots").use("Agg")
    import matplotlib.pyplot as plt

    return plt


def context(rows: list[dict]) -> str:
    """What the runs were: data, model and seeds, for the plots' titles."""
    results = [run["result"] for row in rows for run in row["runs"]]
    data = sorted({str(r["setting"].get("data", "?")) for r in results})
    models = sorted({str(r["setting"].get("model", "?")) for r in results})
    seeds = seed_list(run["seed"] for row in rows for run in row["runs"])
    shown = ", ".join(map(str, seeds[:6])) + (", ..." if len(seeds) > 6 else "")
    return (f"data {', '.join(data)} · model {', '.join(models)} · {len(results)} run(s), "
            f"seed{'s' if len(seeds) > 1 else ''} {shown}")


def curves(result: dict) -> tuple[list[float], list[float], list[float]]:
    """(wall seconds, samples seen, validation loss) at initialisation and after every validated epoch."""
    wall, seen, loss = [0.0], [0.0], [(result.get("initial") or {}).get("val_loss")]
    for h in result["history"]:
        if h.get("val_loss") is not None:
            wall.append(h["wall_s"])
            seen.append(h["samples_seen"])
            loss.append(h["val_loss"])
    return wall, seen, [float("nan") if v is None else v for v in loss]


def step_rate(epoch: dict) -> float | None:
    """An epoch's training-step throughput (older files call it ``train_samples_per_s``)."""
    return epoch.get("step_samples_per_s", epoch.get("train_samples_per_s"))


def _colours(plt, rows: list[dict]) -> list:
    cmap = plt.get_cmap("tab10" if len(rows) <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(len(rows))]


def _save(plt, fig, ax, path: Path, legend: dict | None = None) -> Path:
    if legend is not None:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, **legend)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_val_loss(plt, rows: list[dict], out_dir: Path) -> list[Path]:
    from matplotlib.ticker import EngFormatter

    paths = []
    for x_index, name, xlabel, title in ((0, "val_loss_vs_wall_time.png", "wall time (s)", "wall time"),
                                         (1, "val_loss_vs_samples_seen.png", "training samples seen",
                                          "training samples seen")):
        fig, ax = plt.subplots(figsize=(9, 4.5))
        for row, colour in zip(rows, _colours(plt, rows)):
            for i, run in enumerate(row["runs"]):
                series = curves(run["result"])
                ax.plot(series[x_index], series[2], marker=".", color=colour, alpha=0.85,
                        label=row["label"] if i == 0 else "_nolegend_")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("validation loss")
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.set_title(f"Validation loss vs {title}\n{context(rows)}", fontsize=10)
        paths.append(_save(plt, fig, ax, out_dir / name, legend={"title": "selection / ratio / interval"}))
    return paths


def plot_throughput(plt, rows: list[dict], out_dir: Path) -> Path:
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(9, 4.5))
    handles, any_scoring = [], False
    for row, colour in zip(rows, _colours(plt, rows)):
        for run in row["runs"]:
            history = [h for h in run["result"]["history"] if step_rate(h) is not None]
            ax.plot([h["epoch"] for h in history], [step_rate(h) for h in history], marker=".", color=colour,
                    alpha=0.85)
            scored = [(s.epoch, s.scoring_samples_per_s) for s in records_of(run["result"])
                      if s.scoring_samples_per_s]
            if scored:
                any_scoring = True
                ax.scatter(*zip(*scored), marker="x", color=colour)
        handles.append(Line2D([], [], color=colour, label=row["label"]))
    handles.append(Line2D([], [], color="grey", marker=".", label="training step"))
    if any_scoring:
        handles.append(Line2D([], [], color="grey", marker="x", linestyle="none", label="scoring pass"))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch (1 = first)")
    ax.set_ylabel("samples per second")
    ax.set_title(f"Throughput per epoch\n{context(rows)}", fontsize=10)
    return _save(plt, fig, ax, out_dir / "throughput.png",
                 legend={"handles": handles, "title": "selection / ratio / interval"})


def histogram_run(row: dict) -> dict | None:
    """The row's run shown in the histogram figure: its lowest seed among runs that recorded score histograms."""
    runs = [run for run in row["runs"] if any(s.score_histogram for s in records_of(run["result"]))]
    order = seed_list(run["seed"] for run in runs)
    return min(runs, key=lambda run: order.index(run["seed"])) if runs else None


def plot_score_histograms(plt, rows: list[dict], out_dir: Path) -> Path | None:
    """Small multiples, one panel per row: each selection's score histogram as a line coloured by its epoch."""
    shown = [(row, run) for row in rows if (run := histogram_run(row)) is not None]
    if not shown:
        return None
    from matplotlib.colors import Normalize
    from matplotlib.ticker import MaxNLocator

    epochs = [s.epoch for _, run in shown for s in records_of(run["result"]) if s.score_histogram]
    norm, cmap = Normalize(min(epochs), max(max(epochs), min(epochs) + 1)), plt.get_cmap("viridis")
    cols = min(4, len(shown))
    nrows = -(-len(shown) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.4 * cols + 1.2, 2.8 * nrows + 0.8), squeeze=False,
                             layout="constrained")
    for ax, (row, run) in zip(axes.flat, shown):
        for s in records_of(run["result"]):
            if s.score_histogram:
                hist = s.score_histogram
                ax.stairs(hist["counts"], hist["edges"], color=cmap(norm(s.epoch)), linewidth=1.2)
        score = next((s.score for s in records_of(run["result"]) if s.score), "score")
        ax.set_title(f"{row['label']} (seed {run['seed']})", fontsize=9)
        ax.set_xlabel(f"score ({score})", fontsize=8)
        ax.set_ylabel("samples", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(shown):]:
        ax.set_visible(False)
    bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes, fraction=0.03)
    bar.set_label("epoch the selection was made for")
    bar.locator = MaxNLocator(integer=True)
    bar.update_ticks()
    fig.suptitle(f"Scores the teacher selected from, per selection\n{context(rows)}", fontsize=10)
    path = out_dir / "score_histograms.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot(rows: list[dict], out_dir: Path) -> list[Path]:
    """Every plot of PLOTS that the rows have data for; returns the written paths."""
    if not rows:
        return []
    plt = pyplot()
    paths = [*plot_val_loss(plt, rows, out_dir), plot_throughput(plt, rows, out_dir)]
    from .selection_plot import plot_chosen_vs_score

    optional = [plot_score_histograms(plt, rows, out_dir), plot_chosen_vs_score(plt, rows, out_dir)]
    return paths + [path for path in optional if path]
