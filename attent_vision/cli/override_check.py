"""The command line's overrides, checked before Hydra composes anything: a typo never passes silently.

Hydra lets ``+trainer.epoch=3`` (and ``++``) add a key even to a structured config, so the run would go ahead and
ignore it; a plain typo gets 7-16 lines of Hydra's without a "did you mean", and an unknown option of a group with
nested options (``experiment=cosine_fixed_soft``) lists only the top-level ones. Here each override, read with
Hydra's own parser, is one of:

- a config group (a folder of the entry point's tree or the shared one, nested ones as ``a/b``): each value, sweep
  values too, must be one of its options, nested ones by their full name (``table3/cosine_fixed_soft``);
- any other key (with or without ``+``/``++``/``~``): it must be in the entry point's schema dataclass (a field
  typed ``dict`` or ``Any`` takes any key below it; ``extra.<name>`` holds the user's own keys).

Hydra's own settings (``hydra.*``, ``hydra/*`` groups) are left to Hydra, and so is everything when the user
brings their own config tree (``--config-name``, ``--config-path``, ``--config-dir``). Torch-free: this runs on
every command, ``--cfg job`` and config errors included. An unknown key or option is a ConfigError of one line.
"""

import difflib
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, ValueType
from hydra.errors import HydraException

from ..config import SCHEMAS
from ..config.schema_keys import EXTRA_KEY, child_names, find_unknown
from ..errors import ConfigError
from .help_text import config_groups

STAGE_OF_COMMAND = {"attent-train": "pretrain", "attent-finetune": "finetune", "attent-pseudolabel": "pseudolabel"}

# Hydra's command-line flags (hydra/_internal/utils.py get_args_parser) that take a value, and those after which the
# other arguments are not overrides of our config tree (a tree of the user's, shell completion, a rerun, help).
FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
                    "--config-dir", "-cd", "--experimental-rerun"}
INFO_CHOICES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}  # --info's optional value
OTHER_TREE_FLAGS = {"--config-path", "-cp", "--config-dir", "-cd"}
NOT_OVERRIDES_FLAGS = {"--shell-completion", "-sc", "--experimental-rerun", "--hydra-help", "--version", "--help",
                       "-h"}

# Sweeps whose values can be listed without Hydra's config loader (glob and interval sweeps cannot).
LISTABLE_SWEEPS = {ValueType.CHOICE_SWEEP, ValueType.SIMPLE_CHOICE_SWEEP, ValueType.RANGE_SWEEP}

ESCAPE_HATCH = f"to record a key of your own, use +{EXTRA_KEY}.<name>=<value>"


def override_arguments(argv: list[str], primary_config: Path) -> list[str] | None:
    """The overrides among ``argv`` (flags and their values left out), or None when they are not to be checked
    against our tree: another primary config or config folder (or ``hydra.searchpath`` adding some), shell
    completion, help, a rerun."""
    overrides, args = [], iter(argv)
    for arg in args:
        if not arg.startswith("-"):
            if arg.lstrip("+").startswith("hydra.searchpath"):  # the user adds config folders of their own
                return None
            overrides.append(arg)
            continue
        flag, inline, value = arg.partition("=")
        if flag in NOT_OVERRIDES_FLAGS or flag in OTHER_TREE_FLAGS:
            return None
        if flag in FLAGS_WITH_VALUE:
            value = value if inline else next(args, "")
            if flag in ("--config-name", "-cn") and value not in (primary_config.stem, primary_config.name):
                return None
        elif flag in ("--info", "-i") and not inline:
            following = next(args, None)
            if following is not None and following not in INFO_CHOICES:
                overrides.append(following)
    return overrides


def check_overrides(argv: list[str], command: str, primary_config: Path) -> None:
    """Raise a ConfigError (one line) for the first override of ``argv`` that names an unknown config key, config
    group or group option of ``command``'s (attent-train / attent-finetune) config tree."""
    overrides = override_arguments(argv, primary_config)
    if not overrides:
        return
    schema = SCHEMAS[STAGE_OF_COMMAND[command]][1]
    groups = groups_of(primary_config)
    parser = OverridesParser.create()
    for text in overrides:
        try:
            (override,) = parser.parse_overrides([text])
        except HydraException:
            continue  # not an override Hydra can read: its own error says why
        key = override.key_or_group
        if key == "hydra" or key.startswith(("hydra.", "hydra/")):
            continue  # Hydra's settings and its own groups (launchers, job_logging, ...): Hydra checks them
        if key in groups or "/" in key:
            check_group_override(override, groups)
        else:
            check_schema_key(override, schema, groups)


def groups_of(primary_config: Path) -> dict[str, list[str]]:
    """group -> its own options, over the entry point's tree and the shared one (help_text.py), with folders that
    hold only nested groups as groups of no options of their own (``a`` of ``a/b``)."""
    from ..conf import SHARED_CONF_DIR

    groups = config_groups([primary_config.parent, SHARED_CONF_DIR])
    for group in list(groups):
        parents = [group.rsplit("/", depth)[0] for depth in range(1, group.count("/") + 1)]
        for parent in parents:
            if parent != "hydra":  # Hydra's own groups are left to Hydra
                groups.setdefault(parent, [])
    return dict(sorted(groups.items()))


def options_of(group: str, groups: dict[str, list[str]]) -> list[str]:
    """The options of ``group`` by the names its override takes: its own files, and those of nested folders as
    ``sub/name`` (``experiment`` -> paper_imagenet_s50, table3/full, ...)."""
    names = list(groups.get(group, []))
    names += [f"{nested[len(group) + 1:]}/{option}" for nested, options in groups.items()
              if nested.startswith(group + "/") for option in options]
    return sorted(names)


def group_values(override: Override) -> list:
    """The option names an override of a group asks for: one, each of a list, each of a listable sweep."""
    if override.is_sweep_override():
        if override.value_type not in LISTABLE_SWEEPS:
            return []
        ranged = override.value_type == ValueType.RANGE_SWEEP
        values = list(override.sweep_string_iterator()) if ranged else list(override.value().list)
    else:
        values = [override.value()]
    # A list (experiment=[a,b]) composes each of its options; in a sweep, each value may be one.
    return [option for value in values for option in (value if isinstance(value, list) else [value])]


def check_group_override(override: Override, groups: dict[str, list[str]]) -> None:
    group = override.key_or_group
    if group not in groups:
        raise ConfigError(f"unknown config group '{group}' (from '{override.input_line}')"
                          f"{suggestion(group, list(groups))} Config groups: {', '.join(groups)}")
    if override.is_delete() and override.value() is None:
        return  # ~group: leave the group out
    options = options_of(group, groups)
    for value in group_values(override):
        if value is None:
            raise ConfigError(f"config group {group} takes an option name, not null (from '{override.input_line}');"
                              f" to leave it out, use ~{group}. Options: {', '.join(options)}")
        if isinstance(value, str) and value not in options and "${" not in value:  # Hydra resolves ${...}
            raise ConfigError(f"config group {group} has no option '{value}'{option_suggestion(value, options)} "
                              f"Options: {', '.join(options)}")


def check_schema_key(override: Override, schema: type, groups: dict[str, list[str]]) -> None:
    key, line = override.key_or_group, override.input_line
    unknown = find_unknown(schema, key)
    if unknown is None:
        return
    top_groups = [g for g in groups if "/" not in g]
    if not unknown.parent and unknown.name in groups:  # debug.epochs=1: debug/ sets keys, it has none itself
        raise ConfigError(f"unknown config key '{key}' (from '{line}'): {unknown.name} is a config group, chosen "
                          f"with {unknown.name}=<option> (options: {', '.join(options_of(unknown.name, groups))}); "
                          f"{ESCAPE_HATCH}")
    if unknown.parent:
        near, known = unknown.closest, f"Keys under {unknown.parent}: {', '.join(unknown.siblings)}"
    else:  # the top level: a mistyped group (selction=soft) is as likely as a mistyped key
        near = closest(unknown.name, sorted(set(unknown.siblings) | set(top_groups)))
        known = f"Top-level keys: {', '.join(child_names(schema))}; config groups: {', '.join(top_groups)}"
    hint = f"; did you mean {near}?" if near else "."
    raise ConfigError(f"unknown config key '{key}' (from '{line}'){hint} {known}; {ESCAPE_HATCH}")


def closest(word: str, candidates: list[str]) -> str | None:
    match = difflib.get_close_matches(word, candidates, n=1)
    return match[0] if match else None


def suggestion(word: str, candidates: list[str]) -> str:
    """"; did you mean X?" or, with nothing close, "."."""
    near = closest(word, candidates)
    return f"; did you mean {near}?" if near else "."


def option_suggestion(value: str, options: list[str]) -> str:
    """"; did you mean X?" over full option names and their last parts (``cosine_fixed_soft`` ->
    ``table3/cosine_fixed_soft``); a last part shared by several options names them all."""
    by_name: dict[str, list[str]] = {}
    for option in options:
        by_name.setdefault(option, []).append(option)
        base = option.rsplit("/", 1)[-1]
        if base != option:
            by_name.setdefault(base, []).append(option)
    match = difflib.get_close_matches(value, list(by_name), n=1)
    return f"; did you mean {' or '.join(dict.fromkeys(by_name[match[0]]))}?" if match else "."
