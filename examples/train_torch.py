"""Train a PyTorch model straight from a gigapatch store.

    pip install -e '.[torch]'
    python examples/train_torch.py --steps 3 --workers 2

Batches come from :class:`gigapatch.feed.torch.ShardIterableDataset` (whole
shards, shuffled in a buffer, split over DataLoader workers and, under
``torchrun``, over ranks) with ImageNet normalization, channels first, and
random flips/quarter turns. The model is torchvision's ResNet-18 when
``--model resnet18`` and torchvision is installed, else a small CNN written
here. Without ``--store`` (or when it does not exist), a small labelled store
is made first (:mod:`labeled_store`). Exits non-zero if the loss is not finite.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from gigapatch.feed import Preprocess
from gigapatch.feed.torch import ShardIterableDataset


def small_cnn(classes: int) -> nn.Module:
    """Three strided convolutions, global average pooling and a linear classifier."""
    layers: list[nn.Module] = []
    width = 3
    for out in (32, 64, 128):
        layers += [nn.Conv2d(width, out, 3, stride=2, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
        width = out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes))


def make_model(name: str, classes: int) -> nn.Module:
    if name == "resnet18":
        try:
            import torchvision
        except ImportError:
            print("torchvision is not installed: using the small CNN", file=sys.stderr)
        else:
            return torchvision.models.resnet18(weights=None, num_classes=classes)
    return small_cnn(classes)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train a PyTorch model on a gigapatch store.")
    parser.add_argument("--store", type=Path, default=Path("gigapatch-demo/train/patches.zarr"),
                        help="patch store with class labels (made if missing)")
    parser.add_argument("--image-size", type=int, default=299,
                        help="patch side of a store made here")
    parser.add_argument("--slide-size", type=int, default=4096,
                        help="side of the synthetic slides of a store made here")
    parser.add_argument("--model", default="small", choices=("small", "resnet18"))
    parser.add_argument("--steps", type=int, default=3, help="training steps")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "gpu"),
                        help="where gigapatch's preprocessing kernels run")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parent))
    from labeled_store import store_or_make

    store = store_or_make(args.store, image_size=args.image_size, slide_size=args.slide_size)
    torch.manual_seed(args.seed)
    prep = Preprocess(normalize="imagenet", layout="chw", dihedral=True, device=args.device)
    data = ShardIterableDataset(store, args.batch_size, seed=args.seed, preprocess=prep)
    loader = DataLoader(data, batch_size=None, num_workers=args.workers)
    classes = int(store.label.max()) + 1
    target = "cuda" if args.device == "gpu" else "cpu"
    model = make_model(args.model, classes).to(target)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    print(f"{store}: {classes} classes, model {args.model}, {args.workers} workers")
    losses: list[float] = []
    epoch = 0
    while len(losses) < args.steps:
        data.set_epoch(epoch)
        for x, y, _ in loader:
            loss = nn.functional.cross_entropy(model(x.to(target)), y.to(target))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            print(f"step {len(losses)}: loss {losses[-1]:.4f}", flush=True)
            if len(losses) == args.steps:
                break
        epoch += 1
    if not all(math.isfinite(v) for v in losses):
        print(f"loss is not finite: {losses}", file=sys.stderr)
        return 1
    print(f"final loss {losses[-1]:.4f} after {len(losses)} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
