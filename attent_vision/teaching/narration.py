"""What the teacher tells the user: the plan with its expected training and scoring work (printed at start), and
one log line per selection. Text only; the numbers come from the teacher and its records."""


def plan_text(teacher, batch_size: int) -> str:
    """The plan table, its expected scoring work, the score function and the subset weights."""
    selections, per = len(teacher.plan.selections), teacher.samples_per_scoring
    trained = teacher.plan.samples_planned
    if not per:
        scoring = "scoring work: none (no scores needed)"
    else:
        total = selections * per
        how = (f"free training-step scores + a refresh of the {per} stalest" if teacher.free_scores
               else f"a scoring pass over all {per}")
        cap = teacher.budget.max_fraction if teacher.free_scores else None
        scoring = (f"scoring work: {selections} selections x {how} samples = {total} scored samples "
                   f"({total / trained:.3f} of the samples trained; about {teacher.budget.prior_cost_ratio:g} of a "
                   f"training sample's cost each)"
                   + (f", capped at {cap:.0%} of wall time" if cap is not None and cap < 1 else ", uncapped"))
    if per:
        what = {"loss": "the sample's loss", "learnability": "loss - a holdout-trained reference model's loss "
                "(the reference's training and one pass over the samples come before the first selection)",
                "progress": "how much the loss fell since the sample's previous score"}[teacher.score_fn.name]
        scoring += f"\nscore: {teacher.score_fn.name} ({what})" + (
            "; per-modality weights, each normalised by its mean" if teacher.modality_weights is not None else "")
    if teacher.reweight == "unbiased":
        scoring += "\nsubset weights: unbiased (k / (N x inclusion probability); expected mean 1)"
    return f"{teacher.plan.table(batch_size)}\n{scoring}"


def selection_line(teacher, record: dict) -> str:
    """A log line for a selection record."""
    stats = record.get("scores", {})
    detail = (f"scores mean {stats['mean']:.4f} std {stats['std']:.4f} (p10 {stats['p10']:.4f}, p90 "
              f"{stats['p90']:.4f}); selected mean {record['selected_score_mean']:.4f}"
              if stats.get("scored") else "no scores needed")
    scored = ""
    if record.get("score_source") == "training":
        age = record.get("score_age_mean")
        scored = (f"; refreshed {record['samples_scored']}/{record['refresh_requested']} stalest scores "
                  f"({record['refresh_decision']}) in {record['scoring_s']:.1f}s"
                  + (f", score age mean {age:.1f} max {record['score_age_max']} steps" if age is not None else ""))
    elif record["samples_scored"]:
        scored = f" after scoring {record['samples_scored']} samples in {record['scoring_s']:.1f}s"
    if record.get("reference_s") is not None:
        scored += f"; reference model trained and scored in {record['reference_s']:.1f}s"
    if record.get("weights"):
        w = record["weights"]
        detail += f"; subset weights {w['min']:.3f}..{w['max']:.3f} (mean {w['mean']:.3f})"
    return (f"cycle {record['cycle']} epoch {record['epoch']}: selected {record['size']}/{teacher.plan.num_samples} "
            f"samples (ratio {record['ratio']:.3f}, interval {record['interval']}){scored}; {detail}")
