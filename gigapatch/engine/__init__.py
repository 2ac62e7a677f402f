"""The engine: a plan → Dask tasks aligned with output shards, run locally or on a cluster.

:mod:`gigapatch.engine.run` builds and runs the tasks (one per output
shard, each reading the tiles its patches need and writing its shard whole);
:mod:`gigapatch.engine.scheduling` runs a task graph on local threads or
processes, or on a ``distributed`` cluster, and reports each finished task;
:mod:`gigapatch.engine.workers` makes the paths tasks carry hold on every
worker, and checks them on both ends.
:mod:`gigapatch.engine.estimate` says what a plan will write, how big and how
long, before anything is written; :mod:`gigapatch.engine.benchmark` compares
gigapatch with the decode limit and ``read_region`` loops on one slide.
"""

from gigapatch.engine.estimate import Estimate, SlideRow, estimate
from gigapatch.engine.reading import read_patches
from gigapatch.engine.run import Progress, extract, extract_to_zarr

__all__ = [
    "Estimate",
    "Progress",
    "SlideRow",
    "estimate",
    "extract",
    "extract_to_zarr",
    "read_patches",
]
