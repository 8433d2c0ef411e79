"""``--help`` of both entry points, answered before Hydra starts.

The text is the primary config's own ``hydra.help.template``; its ``$APP_CONFIG_GROUPS`` is filled in here from
the config folders (the entry point's tree and the shared one): a group is a folder, its options are the .yaml
files in it, exactly what Hydra lists. Hydra builds that list by deep-copying its whole config repository once per
group, about 110 times for these trees; that took 0.85 s of a 1.4 s ``--help`` (measured), longer than importing
torch. Hydra's internal groups are left out as Hydra does, except ``hydra/launcher``, which users choose (SLURM).
A template with any other placeholder (``$CONFIG``, ``$FLAGS_HELP``, ...) is left to Hydra.
"""

import re
import string
from pathlib import Path

from omegaconf import OmegaConf

USER_HYDRA_GROUPS = ("hydra/launcher",)  # Hydra's own groups a user picks on the command line
HELP_FLAGS = ("--help", "-h")


def config_groups(trees: list[Path]) -> dict[str, list[str]]:
    """group -> sorted option names over ``trees`` (folders of .yaml files; nested groups as ``a/b``)."""
    groups: dict[str, set[str]] = {}
    for tree in trees:
        for option in tree.rglob("*.yaml"):
            group = option.parent.relative_to(tree).as_posix()
            hidden = group.split("/")[0] == "hydra" and group not in USER_HYDRA_GROUPS
            if group != "." and not hidden:
                groups.setdefault(group, set()).add(option.stem)
    return {group: sorted(options) for group, options in sorted(groups.items())}


def render_help(primary: Path, shared: Path) -> str | None:
    """The help text of the entry point whose primary config file is ``primary``, or None when its template needs
    more than the group list (Hydra then renders it)."""
    template = OmegaConf.select(OmegaConf.load(primary), "hydra.help.template")
    if not isinstance(template, str):
        return None
    placeholders = {m.group(1) or m.group(2) for m in re.finditer(r"\$(?:\{(\w+)\}|(\w+))", template)}
    if placeholders - {"APP_CONFIG_GROUPS"}:
        return None
    listing = "".join(f"{group}: {', '.join(options)}\n"
                      for group, options in config_groups([primary.parent, shared]).items())
    return string.Template(template).substitute(APP_CONFIG_GROUPS=listing)


def print_help_if_asked(argv: list[str], primary: Path, shared: Path) -> bool:
    """Print the help and return True when ``argv`` asks for it (and the template allows it)."""
    if not set(argv) & set(HELP_FLAGS):
        return False
    text = render_help(primary, shared)
    if text is None:
        return False
    print(text)
    return True
