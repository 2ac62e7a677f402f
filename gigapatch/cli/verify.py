"""``gigapatch verify``: read every chunk of a store and check it; ``--repair`` makes damage
resumable."""

from __future__ import annotations

import argparse
import sys

from gigapatch.cli.common import ProgressBar, Subparsers
from gigapatch.store import PatchStore, repair_store, verify_store

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Add ``verify STORE [--quick | --repair]``."""
    p = subparsers.add_parser(
        "verify",
        help="read every chunk of a store and check it (checksums, missing chunks, counts, "
             "coordinates, done flags against files)",
    )
    p.add_argument("store")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--quick", action="store_true",
                     help="check each shard file's index and digest only, not every chunk")
    how.add_argument("--repair", action="store_true",
                     help="clear the done flag of every damaged shard (and remove damaged chunks "
                          "of the per-patch arrays) so that extract --resume redoes exactly those")
    return p


def run(args: argparse.Namespace) -> int:
    """Print ``OK`` and exit 0 for a sound store; else one stderr line per problem, the damaged
    shards by index, and exit 1 (``--repair``: exit 0 once the store is resumable)."""
    store = PatchStore(args.store)
    found = verify_store(store, quick=args.quick,
                         progress=ProgressBar("verify", quiet=args.quiet, unit="shards",
                                              every=args.progress_every))
    name = args.store
    if not store.checksummed:
        print(f"{name}: note: a store of format {store.format} carries no chunk checksums; "
              "damaged patch bytes may go unnoticed (extract again for format 2)",
              file=sys.stderr)
    for problem in found.problems:
        print(f"{name}: {problem}", file=sys.stderr)
    if found.ok:
        checked = "indexes checked" if args.quick else "every chunk checked"
        failed = (f"; {found.failed} failed to extract (recorded: see `gigapatch info`)"
                  if found.failed else "")
        print(f"{name}: OK, {len(store)} patches in {store.n_shards} shards, all done, "
              f"{checked}{failed}")
        return 0
    if found.damaged:
        print(f"{name}: damaged shards: {' '.join(map(str, found.damaged))}", file=sys.stderr)
    if args.repair:
        for action in repair_store(store, found):
            print(f"{name}: repair: {action}")
        if found.repairable or found.not_done:
            print(f"{name}: now run the same extract command with --resume to redo them")
        return 1 if found.fatal else 0
    if found.repairable:
        print(f"{name}: run `gigapatch verify --repair {name}`, then the same extract command "
              "with --resume", file=sys.stderr)
    elif found.not_done:
        print(f"{name}: run the same extract command with --resume to finish it",
              file=sys.stderr)
    return 1
