"""Train Keras' Xception straight from a gigapatch store (Keras 3, any backend).

    pip install -e '.[keras,torch]'
    KERAS_BACKEND=torch python examples/train_xception.py --steps 3

Without ``--store`` (or when it does not exist), a small labelled store is
made first (:mod:`labeled_store`: two synthetic slides in class folders).
Batches come from :class:`gigapatch.feed.keras.PatchSequence` with the
``xception`` preset (float32 in [-1, 1]) and random flips/quarter turns.
Prints the loss after each step and exits non-zero if it is not finite.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is imported

from gigapatch.feed import Preprocess


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train Xception on a gigapatch store.")
    parser.add_argument("--store", type=Path, default=Path("gigapatch-demo/train/patches.zarr"),
                        help="patch store with class labels (made if missing)")
    parser.add_argument("--image-size", type=int, default=299,
                        help="patch side of a store made here (Xception needs >= 71)")
    parser.add_argument("--slide-size", type=int, default=4096,
                        help="side of the synthetic slides of a store made here")
    parser.add_argument("--steps", type=int, default=3, help="training steps")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="PyDataset workers")
    parser.add_argument("--multiprocessing", action="store_true",
                        help="workers are processes, not threads")
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "gpu"),
                        help="where gigapatch's preprocessing kernels run")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import keras

    from gigapatch.feed.keras import PatchSequence

    sys.path.insert(0, str(Path(__file__).parent))
    from labeled_store import store_or_make

    store = store_or_make(args.store, image_size=args.image_size, slide_size=args.slide_size)
    keras.utils.set_random_seed(args.seed)
    prep = Preprocess(normalize="xception", dihedral=True, device=args.device)
    data = PatchSequence(store, args.batch_size, preprocess=prep, seed=args.seed,
                         workers=args.workers, use_multiprocessing=args.multiprocessing)
    classes = data.num_classes
    print(f"{store}: {len(data)} batches of {args.batch_size}, {classes} classes, "
          f"backend {keras.backend.backend()}")
    model = keras.applications.Xception(weights=None, classes=classes,
                                        input_shape=store.patch_shape)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
    losses: list[float] = []

    def report(batch: int, logs: dict) -> None:
        losses.append(float(logs["loss"]))
        print(f"step {batch + 1}: loss {losses[-1]:.4f}", flush=True)

    epochs = math.ceil(args.steps / len(data))
    model.fit(data, epochs=epochs, steps_per_epoch=min(args.steps, len(data)), verbose=0,
              callbacks=[keras.callbacks.LambdaCallback(on_train_batch_end=report)])
    if not losses or not all(math.isfinite(v) for v in losses):
        print(f"loss is not finite: {losses}", file=sys.stderr)
        return 1
    print(f"final loss {losses[-1]:.4f} after {len(losses)} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
