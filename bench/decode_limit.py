"""The decode limit of a slide: seconds to decode its first N level-0 tiles, once each.

Run as a script (``python bench/decode_limit.py SLIDE [--tiles 2000] [--workers 1]``): it
decodes the tiles through ``gigapatch.engine.tiles.decode_tiles`` (the slide's own reader,
tile-aligned reads straight into reused buffers) ``--repeats`` times after a warm-up and
prints the best time and tiles/s. To compare two versions of the reader (the cost of
checking tiles for corruption), run it alternately with each checkout first on
``PYTHONPATH``, in rounds, so machine noise hits both alike::

    for r in 1 2 3 4 5; do
      PYTHONPATH=/path/to/before python bench/decode_limit.py slide.svs
      PYTHONPATH=/path/to/after python bench/decode_limit.py slide.svs
    done
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import gigapatch
from gigapatch.engine.tiles import decode_tiles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("slide")
    parser.add_argument("--tiles", type=int, default=2000, help="first N tiles of level 0")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    slide = gigapatch.open(args.slide)
    tiles = np.arange(args.tiles)
    decode_tiles(slide, 0, tiles[: max(1, args.tiles // 10)], workers=args.workers)  # warm up
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        decode_tiles(slide, 0, tiles, workers=args.workers)
        times.append(time.perf_counter() - t0)
    best = min(times)
    print(f"{args.tiles} tiles in {best:.4f} s ({args.tiles / best:,.0f} tiles/s), "
          f"best of {args.repeats}, {args.workers} worker(s)")


if __name__ == "__main__":
    main()
