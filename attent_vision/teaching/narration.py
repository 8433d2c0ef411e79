"""What the teacher tells the user: the plan with its expected training and scoring work (printed at start), and
one log line per selection. Text only; the numbers come from the teacher and its records."""

from .selection_record import SelectionRecord


def hydra_choices() -> dict:
    """The config group options of the running Hydra app (``interval`` -> ``paper_time``, ...); {} outside one."""
    from hydra.core.hydra_config import HydraConfig

    return dict(HydraConfig.get().runtime.choices) if HydraConfig.initialized() else {}


def preset_text(teacher) -> str:
    """One line: the ratio and interval presets the plan follows (their config options when Hydra runs, and their
    values), and the share of full data's training samples it trains."""
    plan, strategy = teacher.plan, teacher.strategy
    choices = hydra_choices()

    def named(group: str) -> str:
        return f"{group}={choices[group]}" if choices.get(group) else group

    fraction = f"trains {plan.work_fraction:.3f} of full data's training samples"
    if not strategy.trains_on_subsets:
        return f"plan: full data every epoch ({named('ratio')} and {named('interval')} unused); {fraction}"
    if not strategy.cyclic:
        return (f"plan: {strategy.name} plans its own epochs ({named('ratio')} and {named('interval')} unused); "
                f"{fraction}")
    cycles: dict[int, tuple[float, int]] = {}
    for e in plan.epochs:
        if e.is_subset:
            cycles.setdefault(e.cycle, (e.ratio, e.interval))
    (r0, i0), (r1, i1) = cycles[min(cycles)], cycles[max(cycles)]
    return (f"plan: {named('ratio')} {r0:.3f} -> {r1:.3f} of the data, {named('interval')} {i0} -> {i1} subset "
            f"epochs per cycle of {len([e for e in plan.epochs if e.cycle == min(cycles)])}; {fraction}")


def plan_text(teacher, batch_size: int) -> str:
    """The plan table, the presets it follows, its expected scoring work, the score function and the subset
    weights."""
    selections, per = len(teacher.plan.selections), teacher.samples_per_scoring
    trained = teacher.plan.samples_planned
    if not per:
        scoring = "scoring work: none (no scores needed)"
    else:
        draws = teacher.score_draws
        total = selections * per * draws
        how = (f"free training-step scores + a refresh of the {per} stalest" if teacher.free_scores
               else f"a scoring pass over all {per}")
        cap = teacher.budget.max_fraction if teacher.free_scores else None
        each = f" x {draws} draws each" if draws > 1 else ""
        scoring = (f"scoring work: {selections} selections x {how} samples{each} = {total} scored samples "
                   f"({total / trained:.3f} of the samples trained; about {teacher.budget.prior_cost_ratio:g} of a "
                   f"training sample's cost each)"
                   + (f", capped at {cap:.0%} of wall time" if cap is not None and cap < 1 else ", uncapped"))
    if per:
        what = teacher.score_fn.description or "no description"
        scoring += f"\nscore: {teacher.score_fn.name} ({what})" + (
            "; per-modality weights, each normalised by its mean" if teacher.modality_weights is not None else "")
    if teacher.reweight == "unbiased":
        scoring += "\nsubset weights: unbiased (k / (N x inclusion probability); expected mean 1)"
    return f"{teacher.plan.table(batch_size)}\n{preset_text(teacher)}\n{scoring}"


def selection_line(teacher, record: SelectionRecord) -> str:
    """A log line for a selection record."""
    stats = record.scores or {}
    detail = (f"scores mean {stats['mean']:.4f} std {stats['std']:.4f} (p10 {stats['p10']:.4f}, p90 "
              f"{stats['p90']:.4f}); selected mean {record.selected_score_mean:.4f}"
              if record.scored else "no scores needed")
    scored = ""
    if teacher.free_scores and record.refresh_requested is not None:
        age = record.score_age_mean
        scored = (f"; refreshed {record.samples_scored}/{record.refresh_requested} stalest scores "
                  f"({record.refresh_decision}) in {record.scoring_s:.1f}s"
                  + (f", score age mean {age:.1f} max {record.score_age_max} steps" if age is not None else ""))
    elif record.samples_scored:
        scored = f" after scoring {record.samples_scored} samples in {record.scoring_s:.1f}s"
    if record.reference_s is not None:
        scored += f"; reference model trained and scored in {record.reference_s:.1f}s"
    repeat = record.repeatability or {}
    if repeat.get("spearman") is not None:
        scored += (f"; scores repeat with rho {repeat['spearman']:.2f}, top-20% overlap {repeat['top_overlap']:.2f} "
                   f"({repeat['samples']} samples scored again)")
    if record.weights:
        w = record.weights
        detail += f"; subset weights {w['min']:.3f}..{w['max']:.3f} (mean {w['mean']:.3f})"
    return (f"cycle {record.cycle} epoch {record.epoch}: selected {record.size}/{teacher.plan.num_samples} "
            f"samples (ratio {record.ratio:.3f}, interval {record.interval}){scored}; {detail}")
