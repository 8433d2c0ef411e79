"""The settings of the teaching core: the ``ratio``, ``interval``, ``selection`` and ``teaching`` config groups.

They are plain dataclasses, defined here because this package is what consumes them (config/pretrain.py composes
them into the pretraining schema; conf/train/{ratio,interval,selection}/ hold the named choices).
"""

from dataclasses import dataclass
from typing import Any, Optional


@dataclass
class RatioConfig:
    schedule: str = "incremental"  # constant | cosine | incremental: fraction of the data per cycle
    initial_ratio: float = 0.2  # ratio of the first cycle
    final_ratio: float = 0.8  # ratio of the last cycle


@dataclass
class IntervalConfig:
    schedule: str = "incremental"  # fixed | incremental: subset epochs at the start of each cycle
    initial_interval: int = 5  # subset epochs in the first cycle
    max_interval: int = 10  # subset epochs in the last cycle (incremental)


@dataclass
class SelectionConfig:
    strategy: str = "soft"  # a registered strategy (strategies/): none | random | rs2 | hard | soft | prune | yours
    temperature: float = 1.0  # soft: > 0; small -> hard top-k, large -> uniform
    normalization: str = "softmax"  # soft: softmax | sigmoid | zscore | rank
    reselect_every_subset_epoch: bool = True  # re-score and re-select before every subset epoch (release: soft)
    reweight: str = "none"  # none | unbiased (inverse inclusion probability; soft, random, prune; not hard)
    prune_ratio: float = 0.5  # prune: share of N/2 dropped each epoch, drawn from the below-mean samples; [0, 1)
    prune_delta: float = 0.875  # prune: epochs [1, delta x E) are pruned, the rest (the tail) run on full data


@dataclass
class TeachingConfig:
    total_cycles: int = 10  # select-then-train cycles
    scoring_view: str = "deterministic"  # deterministic | paper (the release's augmented, noisy scoring view)
    score_source: str = "pass"  # pass (score every sample before selecting) | training (free scores + refresh)
    refresh_fraction: float = 0.1  # training: re-score the stalest fraction of the samples before each selection
    max_scoring_fraction: Optional[float] = 0.05  # training: cap on scoring seconds / wall time (None = no cap)
    scoring_batch_size: Optional[int] = None  # batch size of scoring passes (None = the evaluation batch size)
    score: str = "loss"  # a registered score (scores/): loss | learnability | progress | yours
    # modality -> weight of its per-task loss in the score, each normalised by its mean; None = the objective.
    # Typed Any so that a command-line dict can replace the null (OmegaConf cannot merge a dict into a typed None).
    score_modalities: Optional[Any] = None
    # Consistent scores (docs/method.md, "Scores that repeat"): each an option, off by default (the paper's score).
    score_draws: int = 1  # K >= 1: a scoring pass (or refresh) averages each sample's losses over K mask/crop draws
    shared_mask: bool = False  # one token-mask pattern per selection and draw, shared by every scored sample
    score_top_q: Optional[float] = None  # q in (0, 1]: score = mean of the q highest-loss patches; None = plain mean
    normalize_free_scores: bool = False  # training: divide each free score by the training loss level of its step
    repeatability_samples: int = 256  # scored a second time at each selection (Spearman rho in results); 0 = off
    # learnability's reference model (pretraining/reference.py): a holdout carved from the training split, trained
    # in optimizer steps until its loss stops falling, cached for every run that would train the same one.
    reference_holdout: float = 0.1  # share of the training split held out for it (never trained on or scored); (0, 1)
    reference_max_steps: int = 500  # optimizer steps at most (>= 1)
    reference_check_every: int = 10  # steps per window whose mean loss is compared with the best window (>= 1)
    reference_patience: int = 3  # stop after this many windows in a row without a 1% improvement (>= 1)
    reference_draws: int = 4  # K >= 1: its losses on each training sample, averaged over K mask/crop draws
    reference_cache: bool = True  # keep the trained model in the data cache and reuse it (false: train every run)
