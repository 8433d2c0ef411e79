"""Typed configuration: the schemas of both entry points, their range checks, and the downstream task list.

    common.py            helpers and the trainer/optim/checkpoint/logger settings both stages share
    pretrain.py          TrainConfig (train.py) and validate_train_config
    finetune.py          FinetuneConfig (finetune.py) and validate_finetune_config
    downstream_data.py   the fine-tuning data schema
    downstream_tasks.py  the downstream tasks (one list for config, suite, report and benchmarks)

Import order runs one way: common <- downstream_* <- pretrain, finetune <- this file.
"""

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig

from .finetune import FinetuneConfig, validate_finetune_config
from .pretrain import TrainConfig, validate_train_config

SCHEMAS = {"pretrain": ("train_schema", TrainConfig), "finetune": ("finetune_schema", FinetuneConfig)}
VALIDATORS = {"pretrain": validate_train_config, "finetune": validate_finetune_config}


def register_configs(*stages: str) -> None:
    """Make the schemas of ``stages`` (default: both) available to Hydra defaults lists (``- train_schema`` /
    ``- finetune_schema``). An entry point registers only its own: Hydra deep-copies every stored schema each time
    it builds a config repository, several times per command."""
    store = ConfigStore.instance()
    for stage in stages or tuple(SCHEMAS):
        name, node = SCHEMAS[stage]
        store.store(name=name, node=node)


def validate_config(cfg: DictConfig, stage: str) -> None:
    """Entry-point validation for ``stage`` in (pretrain, finetune): raises a ConfigError naming the key."""
    VALIDATORS[stage](cfg)


__all__ = ["FinetuneConfig", "TrainConfig", "register_configs", "validate_config", "validate_finetune_config",
           "validate_train_config"]
