"""gigapatch: whole-slide images to training patches, at the speed of decoding.

Open a slide, plan where patches are, extract them into a Zarr v3 store,
and read that store for training::

    import gigapatch
    slide = gigapatch.open("slide.svs")
    plan = gigapatch.grid(slide, size=299)
    store = gigapatch.extract_to_zarr(slide, plan, "patches.zarr")
"""

__version__ = "0.1.0"  # first, so that modules imported below can read it

import logging as _logging

from gigapatch import feed
from gigapatch.engine import extract, extract_to_zarr
from gigapatch.errors import GigapatchError
from gigapatch.plan import PatchPlan, grid
from gigapatch.plan.labels import SlideSet, find_slides
from gigapatch.plan.sampling import random
from gigapatch.sources import Level, Slide
from gigapatch.sources import open_slide as open
from gigapatch.store import PatchStore
from gigapatch.synth import synthesize

# gigapatch logs under the "gigapatch" logger (run start and end, shards, fallbacks); what
# shows where is the application's choice (the command line: -v, -q, --log)
_logging.getLogger("gigapatch").addHandler(_logging.NullHandler())

__all__ = [
    "GigapatchError",
    "Level",
    "PatchPlan",
    "PatchStore",
    "Slide",
    "__version__",
    "extract",
    "extract_to_zarr",
    "feed",
    "grid",
    "random",
    "SlideSet",
    "find_slides",
    "open",
    "synthesize",
]
