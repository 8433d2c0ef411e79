"""Selection strategies, one file each, behind one interface (see base.py). Add one by registering it here."""

from .base import SelectionRound, SelectionStrategy
from .hard import HardSelection
from .none import NoSelection
from .prune import PruneSelection
from .random import RandomSelection
from .rs2 import RS2Selection
from .soft import SoftSelection

STRATEGIES: dict[str, type[SelectionStrategy]] = {
    "none": NoSelection,
    "random": RandomSelection,
    "rs2": RS2Selection,
    "hard": HardSelection,
    "soft": SoftSelection,
    "prune": PruneSelection,
}

__all__ = ["STRATEGIES", "HardSelection", "NoSelection", "PruneSelection", "RS2Selection", "RandomSelection",
           "SelectionRound", "SelectionStrategy", "SoftSelection"]
