"""Selection strategies, one file each, behind one interface (base.py). A new strategy is one module here (or in the
user's ``extensions``) whose class carries ``@STRATEGIES.register()``: the registry imports every module of this
package before its first lookup."""

from .base import STRATEGIES, SelectionRound, SelectionStrategy
from .hard import HardSelection
from .none import NoSelection
from .prune import PruneSelection
from .random import RandomSelection
from .rs2 import RS2Selection
from .soft import SoftSelection

__all__ = ["STRATEGIES", "HardSelection", "NoSelection", "PruneSelection", "RS2Selection", "RandomSelection",
           "SelectionRound", "SelectionStrategy", "SoftSelection"]
