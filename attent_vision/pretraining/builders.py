"""Build models, losses and dataset views from the config (the one place that maps config keys to objects)."""

import logging
import os
from pathlib import Path

import torch

from ..data.pretrain.kinds import pretrain_dataset
from ..data.pretrain.memory_cache import CacheShare, MemoryCachedFolder, check_cache_fits
from ..data.pretrain.source import check_sample_source
from ..data.pretrain.views import PretrainView
from ..engine.loaders import available_cpus
from ..errors import ConfigError
from ..models import MultiMAELoss, create_model
from ..models.convert import load_pretrained
from ..models.domains import DOMAINS, data_modalities
from ..seeds import STREAM_HOLDOUT, STREAM_NOISY_SCORING, STREAM_REFERENCE, generator
from ..teaching.scores import SCORES
from ..teaching.strategies import STRATEGIES

log = logging.getLogger(__name__)

MODALITIES = ("rgb", "depth", "semseg")  # the batch keys that go to the model's device


def build_pretrain_model(cfg):
    """The MultiMAE of ``cfg.model``, optionally initialised from ``cfg.model.init_from``."""
    m = cfg.model
    try:
        model = create_model(
            m.name, image_size=m.image_size, patch_size=m.patch_size, in_domains=list(m.in_domains),
            out_domains=list(m.out_domains), num_encoded_tokens=m.num_encoded_tokens, alpha=m.alpha,
            sample_tasks_uniformly=m.sample_tasks_uniformly, dim=m.dim, depth=m.depth, num_heads=m.num_heads,
            decoder_dim=m.decoder_dim, decoder_depth=m.decoder_depth, decoder_heads=m.decoder_heads,
            semseg_num_classes=m.semseg_num_classes, drop_path_rate=m.drop_path_rate,
        )
    except ValueError as e:
        raise ConfigError(f"config group model: {e}") from None
    if m.init_from:
        report = load_pretrained(model, m.init_from)
        log.info("initialised from %s: %s", m.init_from, report.summary())
    return model


def build_loss(cfg, model) -> MultiMAELoss:
    m = cfg.model
    return MultiMAELoss(
        tasks={d: DOMAINS[d].mask_source for d in m.out_domains},
        patch_size=m.patch_size,
        strides={d: DOMAINS[d].stride_level for d in m.out_domains},
        weights=dict(m.loss_weights),
        loss_on_unmasked=m.loss_on_unmasked,
        score_top_q=cfg.teaching.score_top_q,  # the selection score's reduction (the objective is unchanged)
    )


def dataset_root(cfg) -> Path:
    """Where the pretraining data is, as its kind (``data.name``, data/pretrain/kinds/) says: ``data.root`` for
    folder datasets; for the synthetic default, the cache folder (generated on first use into ``data.cache_dir``,
    default $ATTENT_VISION_CACHE)."""
    return pretrain_dataset(cfg).root(cfg)


def uses_reference_model(cfg) -> bool:
    """Whether this run trains a reference model: a score function that needs one (learnability) with a strategy
    that reads scores (random and none never ask for them, so they keep the whole training split)."""
    return SCORES.get(cfg.teaching.score).needs_reference and STRATEGIES.get(cfg.selection.strategy).needs_scores


def reference_holdout(cfg, num_samples: int) -> tuple[list[int], list[int]]:
    """(kept, holdout): the training split's folder indices 0..N-1 split into the samples the learner trains on and
    scores, and the reference model's holdout, both sorted. The holdout is round(teaching.reference_holdout x N)
    samples drawn with the run's seed (its own stream): the same for every run of one seed and N, so the runs of a
    sweep share it (and the cached reference model, reference_cache.py)."""
    fraction = cfg.teaching.reference_holdout
    size = round(fraction * num_samples)
    if not 0 < size < num_samples:
        raise ConfigError(f"teaching.reference_holdout={fraction} of the {num_samples} training samples leaves {size} "
                          f"for the reference model's holdout and {num_samples - size} to train on; each needs at "
                          "least one: choose a fraction in between, or more training data")
    order = torch.randperm(num_samples, generator=generator(cfg.trainer.seed, STREAM_HOLDOUT)).tolist()
    return sorted(order[size:]), sorted(order[:size])


def build_pretrain_views(cfg, model, root: Path) -> dict[str, PretrainView | None]:
    """Views for training (augmented, masks by (seed, epoch, index)), scoring and validation (deterministic,
    fixed masks). Scoring uses the deterministic view with fixed masks, except with ``scoring_view=paper`` (the
    release's noisy view) and with ``score_source=training``: a refresh must give scores comparable with the
    training-step scores beside which they are ranked, so it draws crops, flips and masks from the training
    distribution (its own random stream: other draws, the same distribution). With ``data.cache=memory`` the
    views of one split share one :class:`MemoryCachedFolder`, after a check that it fits in memory. With
    learnability's reference model, training and scoring see the training split less its holdout
    (:func:`reference_holdout`; item i of those views is folder sample ``view.folder_index(i)``), and
    ``views["reference"]`` is the holdout."""
    d, m = cfg.data, cfg.model
    modalities = data_modalities(list(m.in_domains), list(m.out_domains))
    kind = pretrain_dataset(cfg)  # how data.name is read (data/pretrain/kinds/)

    def folder(split: str):
        raw = check_sample_source(kind.folder(root, split, modalities, cfg), kind.name)
        return MemoryCachedFolder(raw) if d.cache == "memory" else raw

    seed = cfg.trainer.seed
    common = dict(image_size=m.image_size, seed=seed, mask_spec=model.mask_spec, crop_scale=tuple(d.crop_scale),
                  crop_ratio=tuple(d.crop_ratio), hflip_prob=d.hflip_prob, semseg_stride=DOMAINS["semseg"].stride_level)
    train_folder = folder(d.train_split)
    # learnability: the reference model's holdout leaves the training split; the rest is trained and scored
    kept, holdout = reference_holdout(cfg, len(train_folder)) if uses_reference_model(cfg) else (None, None)
    views = {"train": PretrainView(train_folder, augment=True, subset=kept, **common)}
    if cfg.teaching.scoring_view == "paper" or cfg.teaching.score_source == "training":
        views["score"] = PretrainView(train_folder, augment=True, stream=STREAM_NOISY_SCORING, subset=kept,
                                      shared_masks=cfg.teaching.shared_mask, **common)
    else:
        views["score"] = PretrainView(train_folder, augment=False, subset=kept, shared_masks=cfg.teaching.shared_mask,
                                      **common)
    views["val"] = PretrainView(folder(d.val_split), augment=False, **common) if d.val_split else None
    if holdout is not None:  # what the reference model trains on (reference.py), augmented like training
        views["reference"] = PretrainView(train_folder, augment=True, stream=STREAM_REFERENCE, subset=holdout,
                                          **common)
    if d.cache == "memory":
        check_memory_cache(cfg, views)
    return views


def ranks_on_this_node() -> int:
    """Processes of this run that share this machine's memory: torchrun's LOCAL_WORLD_SIZE, else (conservatively)
    all ranks."""
    return int(os.environ.get("LOCAL_WORLD_SIZE") or os.environ.get("WORLD_SIZE") or 1)


def check_memory_cache(cfg, views: dict) -> int:
    """Refuse (ConfigError) a ``data.cache=memory`` that may not fit in memory; returns the estimate (bytes).

    Each process that reads a folder may come to hold all of its samples: the training process (which reads
    everything itself with ``num_workers=0``, and the reference model's holdout and the figures' samples always),
    plus, with W loader workers (``data.num_workers``, capped at the CPUs, as the loaders do), W per loader over the
    folder: training and, for strategies that score, the scoring pass over the training folder; validation over
    the validation folder. All of it times the ranks on this machine."""
    d = cfg.data
    workers = min(d.num_workers, available_cpus())
    ranks = ranks_on_this_node()
    train_loaders = 2 if STRATEGIES[cfg.selection.strategy].needs_scores else 1
    folders = [("training", views["train"].folder, 1 + workers * train_loaders)]
    if views["val"] is not None:
        folders.append(("validation", views["val"].folder, 1 + workers))
    shares = []
    for name, f, copies in folders:
        sample_bytes = f.sample_nbytes()
        if sample_bytes is None:  # skip mode, and none of the probed samples loads: the passes will report them
            log.warning("data.cache=memory: none of the %s samples probed to measure the cache loads; the cache "
                        "size is not checked for them", name)
        shares.append(CacheShare(name, len(f), sample_bytes or 0, copies * ranks))
    if workers and not d.persistent_workers:
        log.warning("data.cache=memory with data.persistent_workers=false: loader workers, and the samples they "
                    "cached, end after every pass, so later epochs decode again; set data.persistent_workers=true")
    return check_cache_fits(shares)
