"""The engine: a plan → Dask tasks aligned with output shards, run locally or on a cluster.

:mod:`gigapatch.engine.run` builds and runs the tasks (one per output
shard, each reading the tiles its patches need and writing its shard whole);
:mod:`gigapatch.engine.scheduling` runs a task graph on local threads or
processes, or on a ``distributed`` cluster, and reports each finished task.
"""

from gigapatch.engine.reading import read_patches
from gigapatch.engine.run import Progress, extract, extract_to_zarr

__all__ = ["Progress", "extract", "extract_to_zarr", "read_patches"]
