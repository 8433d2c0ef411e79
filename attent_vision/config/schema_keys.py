"""Which dotted keys a schema dataclass has: the one walk behind both checks of unknown keys.

Hydra's ``+key=value`` (and ``++``) adds a key even to a structured config, so a typo such as
``+trainer.epoch=3`` would compose and be ignored. Two checks refuse it: the command line before Hydra composes
anything (cli/override_check.py), and the composed config after (``validate_config``), which also sees keys added
where the first cannot look (a sweep file's params, ``downstream.overrides``). Both ask this module.

A field typed ``dict[...]`` or ``Any`` takes any key below it (``model.loss_weights.rgb``, ``extra.note``); a list
takes indices; a dataclass takes its fields; any other type takes nothing below it.
"""

import dataclasses
import difflib
import typing
from typing import Any, Union

from omegaconf import DictConfig, OmegaConf

EXTRA_KEY = "extra"  # the schemas' free-form mapping for the user's own keys


class _FreeForm:
    """Marker: any key below this field is allowed."""


def _unwrap(annotation: Any) -> Any:
    """``Optional[X]`` -> X; a union of several types (or a bare ``Any``) -> _FreeForm."""
    if typing.get_origin(annotation) is Union:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _unwrap(members[0]) if len(members) == 1 else _FreeForm
    if annotation is Any or annotation is object:
        return _FreeForm
    return annotation


def _fields(schema: type) -> dict[str, Any]:
    """name -> (unwrapped) type of a dataclass's fields."""
    hints = typing.get_type_hints(schema)
    return {f.name: _unwrap(hints.get(f.name, Any)) for f in dataclasses.fields(schema)}


def _child(node: Any, name: str) -> tuple[bool, Any]:
    """Whether ``name`` exists below a field of type ``node``, and its type."""
    if node is _FreeForm or node is dict or typing.get_origin(node) is dict:
        return True, _FreeForm
    if node in (list, tuple) or typing.get_origin(node) in (list, tuple):
        args = typing.get_args(node)
        return name.isdigit(), _unwrap(args[0]) if args else _FreeForm
    if dataclasses.is_dataclass(node):
        fields = _fields(node)
        return name in fields, fields.get(name)
    return False, None


def child_names(node: Any) -> list[str]:
    """The keys a field of type ``node`` has (empty for free-form fields, lists and plain values)."""
    return sorted(_fields(node)) if dataclasses.is_dataclass(node) else []


@dataclasses.dataclass(frozen=True)
class UnknownKey:
    """The first part of a dotted key that ``schema`` does not have."""

    key: str  # the whole dotted key asked about
    parent: str  # the known part above the unknown one ('' = the top level)
    name: str  # the unknown part
    siblings: list[str]  # the keys that exist under ``parent``

    @property
    def closest(self) -> str | None:
        """The existing key (full dotted name) most like the unknown one, if any is close."""
        match = difflib.get_close_matches(self.name, self.siblings, n=1)
        return (f"{self.parent}.{match[0]}" if self.parent else match[0]) if match else None


def find_unknown(schema: type, key: str) -> UnknownKey | None:
    """None when dotted ``key`` exists in dataclass ``schema`` (or lies below a free-form field), else where it
    leaves the schema."""
    node: Any = schema
    parts = key.split(".")
    for i, part in enumerate(parts):
        found, child = _child(node, part)
        if not found:
            return UnknownKey(key, ".".join(parts[:i]), part, child_names(node))
        if child is _FreeForm:
            return None
        node = child
    return None


def unknown_keys(cfg: DictConfig, schema: type) -> list[str]:
    """The dotted keys of a composed ``cfg`` that ``schema`` does not have (interpolations are not resolved)."""
    return list(_walk(OmegaConf.to_container(cfg, resolve=False, throw_on_missing=False), schema, ""))


def _walk(values: Any, node: Any, prefix: str):
    if not isinstance(values, dict) or not dataclasses.is_dataclass(node):
        return  # a free-form mapping, a list or a plain value: nothing more to check below it
    for name, value in values.items():
        found, child = _child(node, str(name))
        if not found:
            yield f"{prefix}{name}"
        else:
            yield from _walk(value, child, f"{prefix}{name}.")
