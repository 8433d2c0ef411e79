"""Selection strategies, one file each, behind one interface (see base.py). Add one by registering it here."""

from .base import SelectionStrategy
from .hard import HardSelection
from .none import NoSelection
from .prune import PruneSelection
from .random import RandomSelection
from .soft import SoftSelection

STRATEGIES: dict[str, type[SelectionStrategy]] = {
    "none": NoSelection,
    "random": RandomSelection,
    "hard": HardSelection,
    "soft": SoftSelection,
    "prune": PruneSelection,
}

__all__ = ["STRATEGIES", "SelectionStrategy", "HardSelection", "NoSelection", "RandomSelection", "SoftSelection",
           "PruneSelection"]
