"""The frontier benchmark's plan: its regimes and methods, the overrides of every run, and the order they run in
(benchmarks/frontier.py runs them). Bad input found here is a BadInput, which the command turns into one line."""

from dataclasses import dataclass
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from attent_vision.config import register_configs, validate_train_config
from attent_vision.config.downstream_tasks import DOWNSTREAM_TASKS
from attent_vision.errors import UserError
from attent_vision.teaching.strategies import STRATEGIES

CONF_DIR = Path(__file__).resolve().parents[1] / "conf" / "train"


class BadInput(Exception):
    """Bad arguments found after parsing: a budget too small for the plan, an --out holding another benchmark."""


@dataclass(frozen=True)
class Regime:
    overrides: tuple[str, ...]
    pilot_epochs: int  # the pilot's long full-data run
    pilot_every: int  # it is probed every this many epochs


SHRUNK = ("model=multimae_nano", "model.image_size=32", "data.synthetic.num_train=512", "data.synthetic.num_val=64",
          "trainer.batch_size=64", "optim.warmup_epochs=2")
REGIMES = {
    "clean": Regime((*SHRUNK, "data.synthetic.duplicate_fraction=0.0"), 60, 5),
    # Half the scenes are jittered copies of earlier ones: redundancy that selection could exploit.
    "redundant": Regime((*SHRUNK, "data.synthetic.duplicate_fraction=0.5"), 60, 5),
}
LEARNABILITY = ("teaching.score=learnability", "teaching.score_source=training")
PAPER = ("selection=soft", "teaching.score_source=pass")  # AtteNT as the paper runs it
METHODS = {
    "full": ("selection=none",),
    "random": ("selection=random",),
    "random_rs2": ("selection=rs2",),  # RS2: a fresh uniform subset every subset epoch, without replacement
    "soft_pass": PAPER,
    "soft_free": ("selection=soft", "teaching.score_source=training"),
    "prune": ("selection=prune",),
    "soft_learn": ("selection=soft", "selection.reweight=unbiased", *LEARNABILITY),
    "hard_learn": ("selection=hard", *LEARNABILITY),
    "hard": ("selection=hard", "teaching.score_source=training"),
    # The score options of docs/method.md "Scores that repeat", each on the paper's method (or its free-score
    # form), judged against RS2 at equal compute
    "soft_pass_k4": (*PAPER, "teaching.score_draws=4"),
    "soft_pass_topq": (*PAPER, "teaching.score_top_q=0.25"),
    "soft_pass_shared": (*PAPER, "teaching.shared_mask=true"),
    "soft_free_norm": ("selection=soft", "teaching.score_source=training", "teaching.normalize_free_scores=true"),
}
DEFAULT_METHODS = ("full", "random", "random_rs2", "soft_pass", "soft_free", "prune")
# --methods scores: every score option against both random baselines and the paper's method
SCORE_OPTIONS = ("full", "random", "random_rs2", "soft_pass", "soft_pass_k4", "soft_pass_topq", "soft_pass_shared",
                 "soft_free", "soft_free_norm", "soft_learn")
METHOD_SETS = {"default": DEFAULT_METHODS, "scores": SCORE_OPTIONS}
# Probes at the end only; validation only at the end; no periodic checkpoints (none of it trains). Decoded scenes
# stay in memory and load in the training process: on 2 cores, loader workers compete with training.
# The repeatability check scores 128 samples again at each selection: its time is outside the training wall and the
# compute axis (it measures the scores), and its rho says how well each method's scores repeat.
COMMON = ("probe=standard", "trainer.val_every_epochs=0", "checkpoint.every_epochs=0", "checkpoint.keep_last=1",
          "trainer.progress_bar=false", "data.num_workers=0", "data.cache=memory",
          "teaching.repeatability_samples=128")
TASKS = list(DOWNSTREAM_TASKS)
ARGUMENTS = ("regimes", "methods", "budgets", "seeds", "pilot_seeds", "reference_epochs", "overrides", "finetune")


@dataclass(frozen=True)
class Run:
    regime: str
    seed: int
    budget: float
    method: str
    epochs: int
    overrides: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"seed{self.seed}_b{self.budget}_{self.method}"


def compose_train(overrides: list[str]):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def run_overrides(args, regime: str, method: str, seed: int, epochs: int, finetune: bool) -> tuple[str, ...]:
    tasks = (f"downstream.tasks=[{','.join(TASKS)}]",) if finetune else ()
    return (*REGIMES[regime].overrides, *METHODS[method], *COMMON, f"experiment_name=frontier_{method}",
            f"trainer.seed={seed}", f"trainer.epochs={epochs}", *tasks, *args.overrides)


def pilot_overrides(args, regime: str, seed: int) -> tuple[str, ...]:
    r = REGIMES[regime]
    return (*run_overrides(args, regime, "full", seed, r.pilot_epochs, False), f"probe.every_epochs={r.pilot_every}")


def check_methods(args) -> None:
    """Compose and validate every (regime, method) config before anything runs (one line on a mistake)."""
    for regime in args.regimes:
        for method in args.methods:
            try:
                validate_train_config(compose_train(list(run_overrides(args, regime, method, 0, 40, False))))
            except (UserError, HydraException, OmegaConfBaseException) as e:
                raise BadInput(f"regime {regime}, method {method}: {' '.join(str(e).split())}") from None


def plan_runs(args, references: dict[str, int]) -> tuple[list[Run], dict]:
    """Every run in order from each regime's reference epochs, and what each regime is; each budget is checked
    against the plan (a subset method needs teaching.total_cycles + 1 epochs)."""
    runs, regimes = [], {}
    for regime in args.regimes:
        ref = references[regime]
        epochs = {b: max(1, round(b * ref)) for b in args.budgets}
        for b, e in epochs.items():
            twin = next((o for o in args.budgets if o < b and epochs[o] == e), None)
            if twin is not None:
                raise BadInput(f"budgets {twin} and {b} both give {e} epochs in regime {regime} ({ref} reference "
                               "epochs); drop one")
        for method in args.methods:
            cfg = compose_train(list(run_overrides(args, regime, method, 0, ref, False)))
            strategy = STRATEGIES[cfg.selection.strategy]
            minimum = cfg.teaching.total_cycles + 1 if strategy.trains_on_subsets and strategy.cyclic else 1
            for b in args.budgets:
                if epochs[b] < minimum:
                    raise BadInput(f"budget {b} gives {epochs[b]} epochs in regime {regime} ({ref} reference epochs), "
                                   f"but method {method} trains on subsets and needs teaching.total_cycles + 1 = "
                                   f"{minimum}; use budgets of at least {minimum / ref:.3g}")
        regimes[regime] = {"scenes": OmegaConf.select(cfg, "data.synthetic.num_train"), "model": cfg.model.name,
                           "image_size": cfg.model.image_size, "batch_size": cfg.trainer.batch_size,
                           "duplicate_fraction": OmegaConf.select(cfg, "data.synthetic.duplicate_fraction"),
                           "total_cycles": cfg.teaching.total_cycles, "reference_epochs": ref,
                           "epochs": {str(b): e for b, e in epochs.items()}}
        for seed in args.seeds:
            for b in args.budgets:
                for method in args.methods:
                    overrides = run_overrides(args, regime, method, seed, epochs[b], args.finetune and b == 1.0)
                    runs.append(Run(regime, seed, b, method, epochs[b], overrides))
    return runs, regimes
