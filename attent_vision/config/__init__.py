"""Typed configuration: the schemas of both entry points, their range checks, and the downstream task list.

    common.py            helpers and the trainer/optim/checkpoint/logger settings both stages share
    pretrain.py          TrainConfig (train.py) and validate_train_config
    finetune.py          FinetuneConfig (finetune.py) and validate_finetune_config
    pseudolabel.py       PseudolabelConfig (attent-pseudolabel) and validate_pseudolabel_config
    downstream_data.py   the fine-tuning data schema
    downstream_tasks.py  the downstream tasks (one list for config, suite, report and benchmarks)
    schema_keys.py       which dotted keys a schema has (unknown keys: here and on the command line)

Import order runs one way: common <- downstream_* <- pretrain, finetune <- this file.
"""

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig

from ..errors import ConfigError
from ..registry import import_extensions
from .finetune import FinetuneConfig, validate_finetune_config
from .pretrain import TrainConfig, validate_train_config
from .pseudolabel import PseudolabelConfig, validate_pseudolabel_config
from .schema_keys import EXTRA_KEY, find_unknown, unknown_keys

SCHEMAS = {"pretrain": ("train_schema", TrainConfig), "finetune": ("finetune_schema", FinetuneConfig),
           "pseudolabel": ("pseudolabel_schema", PseudolabelConfig)}
VALIDATORS = {"pretrain": validate_train_config, "finetune": validate_finetune_config,
              "pseudolabel": validate_pseudolabel_config}


def register_configs(*stages: str) -> None:
    """Make the schemas of ``stages`` (default: both) available to Hydra defaults lists (``- train_schema`` /
    ``- finetune_schema``). An entry point registers only its own: Hydra deep-copies every stored schema each time
    it builds a config repository, several times per command."""
    store = ConfigStore.instance()
    for stage in stages or tuple(SCHEMAS):
        name, node = SCHEMAS[stage]
        store.store(name=name, node=node)


def validate_config(cfg: DictConfig, stage: str) -> None:
    """Entry-point validation for ``stage`` (pretrain, finetune, pseudolabel): raises a ConfigError naming the key."""
    check_known_keys(cfg, stage)
    # The user's extension modules register their scores, strategies, datasets and task kinds before any check
    # looks a name up in a registry (attent_vision/registry.py).
    import_extensions(list(cfg.get("extensions") or ()))
    VALIDATORS[stage](cfg)


def check_known_keys(cfg: DictConfig, stage: str) -> None:
    """A ConfigError for a key of the composed ``cfg`` that ``stage``'s schema lacks. Hydra's ``+key`` adds keys
    even to a structured config; the command line is checked before composition (cli/override_check.py), this
    catches what it cannot see: ``+key`` in a sweep file's params, or a primary config of the user's own that does
    not start from the schema (``--config-name``/``--config-path``; group files cannot add keys to a schema)."""
    schema = SCHEMAS[stage][1]
    for key in unknown_keys(cfg, schema)[:1]:  # the first, like every other config error
        near = find_unknown(schema, key).closest
        hint = f"; did you mean {near}?" if near else "."
        raise ConfigError(f"unknown config key '{key}': {schema.__name__} ({schema.__module__}) has no such key"
                          f"{hint} It came from a '+' override in a sweep file's params or from a "
                          f"config of your own (--config-name/--config-path): remove it, or keep your own keys under "
                          f"{EXTRA_KEY}.<name>")


__all__ = ["FinetuneConfig", "PseudolabelConfig", "TrainConfig", "check_known_keys", "register_configs",
           "validate_config", "validate_finetune_config", "validate_pseudolabel_config", "validate_train_config"]
