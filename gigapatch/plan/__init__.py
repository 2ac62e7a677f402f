"""Plans: *where* patches are, as plain arrays, decided before any full-resolution pixel is read.

Grids (:func:`grid`, the semantics of ``tf.image.extract_patches``) and random
plans (:func:`random`, uniform or weighted by a map), with tissue masks,
per-slide levels and labels, all in a :class:`PatchPlan`.
"""

from gigapatch.errors import parse_pair
from gigapatch.plan.core import PatchPlan, as_slides
from gigapatch.plan.grid import grid
from gigapatch.plan.sampling import random

__all__ = ["PatchPlan", "as_slides", "grid", "parse_pair", "random"]
