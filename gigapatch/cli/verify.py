"""``gigapatch verify``: check that a store is complete and consistent."""

from __future__ import annotations

import argparse
import sys

from gigapatch.cli.common import Subparsers
from gigapatch.store import PatchStore

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Add ``verify STORE``."""
    p = subparsers.add_parser("verify", help="check that a store is complete and consistent")
    p.add_argument("store")
    return p


def run(args: argparse.Namespace) -> int:
    """Print ``OK`` and exit 0 for a sound store; else one stderr line per problem and exit 1."""
    store = PatchStore(args.store)
    problems = store.verify()
    for problem in problems:
        print(f"{args.store}: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"{args.store}: OK, {len(store)} patches in {store.n_shards} shards, all done")
    return 0
