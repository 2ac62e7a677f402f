"""A small complete store with known contents, shared by the store and feed tests."""

from __future__ import annotations

import numpy as np

from gigapatch.store import PatchStore, StoreSpec, create_store, mark_done, write_shard


def make_store(path, n=75, shard_size=16, size=(6, 5), codec="lz4", seed=0, tissue=True,
               dtype=np.uint8):
    """A complete store of ``n`` random patches, 3 slides, labels 0..2, known tissue fractions.

    Patch ``i``'s first pixel holds ``i % 256`` in channel 0, so reads can be told apart.
    Returns the store and the patches written.
    """
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, *size, 3), dtype=np.uint8).astype(dtype)
    images[:, 0, 0, 0] = np.arange(n) % 256
    slide = np.arange(n) % 3
    label = (np.arange(n) // 7) % 3
    group = create_store(path, StoreSpec(
        patch_shape=(*size, 3), dtype=dtype, coords=np.stack([np.arange(n)] * 2, 1),
        slide=slide, label=label, sources=[{"path": f"s{k}"} for k in range(3)], plan={},
        shard_size=shard_size, codec=codec,
        tissue=rng.uniform(0, 1, n).astype(np.float32) if tissue else None,
    ))
    n_shards = -(-n // shard_size)
    for k in range(n_shards):
        write_shard(group["images"], k, images[k * shard_size : (k + 1) * shard_size])
    mark_done(group, range(n_shards))
    return PatchStore(path), images


def make_unfinished_store(path):
    """A store of 3 patches of 2x2x1 in 2 shards, none written: an interrupted extraction."""
    create_store(path, StoreSpec(
        patch_shape=(2, 2, 1), dtype=np.uint8, coords=np.zeros((3, 2)), slide=np.zeros(3),
        label=np.zeros(3), sources=[{"name": "a", "downsample": [1, 1], "shape": [9, 9]}],
        plan={}, shard_size=2,
    ))
    return path


def make_class_store(root, shard_size=8):
    """A complete store extracted from class folders: ``benign/{a,b}.tif``, ``tumor/c.tif``
    (64x80, 3 slides, label 0 0 1, 20 patches of 16x16 each), classes ("benign", "tumor").

    Returns the store and the folder of the slides.
    """
    import tifffile

    import gigapatch
    from gigapatch.plan.labels import find_slides

    rng = np.random.default_rng(1)
    slides = root / "slides"
    for name in ("benign/a.tif", "benign/b.tif", "tumor/c.tif"):
        (slides / name).parent.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(slides / name, rng.integers(0, 255, (64, 80, 3), dtype=np.uint8))
    found = find_slides(slides, labels_from_dirs=True)
    plan = gigapatch.grid(found, 16)
    store = gigapatch.extract_to_zarr(found, plan, root / "classes.zarr", shard_size=shard_size)
    return store, slides
