"""Which config keys make two runs different runs, in one place.

A run is its resolved config. Some keys change neither what it computes nor what it measures: where and how fast it
runs, how it logs and checkpoints. Two readers ask the same question of them:
- a resumed run may change them (engine/stage.py ``resume_may_differ`` adds the keys a resume may change for its
  own reasons, e.g. probes and downstream tasks that run after training);
- the report (report/tables.py) averages runs that differ only in them (and in the seed), and keeps every other
  difference a separate row, named in its ``differs`` column.
"""

SEED_KEY = "trainer.seed"

# Dotted keys, or whole sections, that do not change the computation or the measurements of a run.
OUTSIDE_THE_COMPUTATION: tuple[str, ...] = (
    "trainer.eval_batch_size", "trainer.compile", "trainer.device", "trainer.log_every_steps",
    "trainer.val_every_epochs", "trainer.progress_bar", "trainer.stop_after_steps", "trainer.max_nonfinite_steps",
    "trainer.micro_batch_size",  # gradient accumulation: the same global batch gives the same run (tested)
    "trainer.vis_every_epochs", "trainer.num_vis_samples",
    "data.num_workers", "data.pin_memory", "data.persistent_workers", "data.prefetch_factor", "data.cache",
    "data.cache_dir", "checkpoint", "logger", "teaching.scoring_batch_size",
    "teaching.repeatability_samples",  # a measurement of the scores: it changes no selection and no weight
    "teaching.reference_cache",  # whether learnability's reference model is reused: the same model either way
    "experiment_name",  # a label: the report shows it in a column of its own
)


def flatten(tree: dict | None, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists and scalars are leaves."""
    out = {}
    for key, value in (tree or {}).items():
        name = f"{prefix}{key}"
        out.update(flatten(value, name + ".") if isinstance(value, dict) else {name: value})
    return out


def is_under(key: str, sections: tuple[str, ...]) -> bool:
    """``key`` is one of ``sections`` or lies inside one of them."""
    return any(key == s or key.startswith(s + ".") for s in sections)


def computation_settings(config: dict) -> dict:
    """The flattened resolved config of a run without its seed and the keys outside the computation: equal for
    two runs exactly when they are seeds (or reruns) of one setting."""
    return {k: v for k, v in flatten(config).items()
            if k != SEED_KEY and not is_under(k, OUTSIDE_THE_COMPUTATION)}
