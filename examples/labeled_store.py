"""Make a small labelled patch store like ``gigapatch demo`` does, with two class folders.

Two synthetic 20× slides are written to ``OUT/slides/class_a`` and
``OUT/slides/class_b`` (different seeds), found with
``find_slides(..., labels_from_dirs=True)`` (labels 0 and 1, as
``gigapatch extract --labels-from-dirs`` does), and their tissue is cut on a
grid of ``image_size``² patches into ``OUT/patches.zarr``.

Run ``python examples/labeled_store.py OUT`` or import :func:`labeled_store`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gigapatch


def labeled_store(
    out: str | Path, *, image_size: int = 299, slide_size: int = 4096, min_tissue: float = 0.5
) -> gigapatch.PatchStore:
    """Synthesize two class folders of one slide each under ``out`` and extract them."""
    out = Path(out)
    for label, name in enumerate(("class_a", "class_b")):
        folder = out / "slides" / name
        folder.mkdir(parents=True, exist_ok=True)
        gigapatch.synthesize(folder / f"{name}.svs", slide_size, seed=label, mpp=0.5)
    slides = gigapatch.find_slides(out / "slides", labels_from_dirs=True)
    plan = gigapatch.grid(slides, image_size, min_tissue=min_tissue)
    return gigapatch.extract_to_zarr(slides, plan, out / "patches.zarr", overwrite=True)


def store_or_make(path: str | Path, *, image_size: int, slide_size: int) -> gigapatch.PatchStore:
    """Open the store at ``path``, or make a labelled one next to it when there is none."""
    path = Path(path)
    if path.exists():
        return gigapatch.PatchStore(path)
    return labeled_store(path.parent, image_size=image_size, slide_size=slide_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="folder for the slides and patches.zarr")
    parser.add_argument("--image-size", type=int, default=299, help="patch side in pixels")
    parser.add_argument("--slide-size", type=int, default=4096, help="slide side in pixels")
    args = parser.parse_args()
    store = labeled_store(args.out, image_size=args.image_size, slide_size=args.slide_size)
    print(store, "labels:", sorted(set(store.label.tolist())))


if __name__ == "__main__":
    main()
