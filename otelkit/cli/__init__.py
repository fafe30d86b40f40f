"""The ``otelkit`` command: one sub-command per module in this package.

Each sub-command module exposes ``register(subparsers)``, which adds its parser and sets
``handler`` (a function taking the parsed arguments and returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

SUBCOMMANDS: dict[str, str] = {"synthetic": "synthetic", "stack": "dev"}
"""Modules of this package that add sub-commands (in the order ``--help`` lists them), each with
the extra that installs what it imports."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otelkit", description="otelkit command line")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, extra in SUBCOMMANDS.items():
        try:
            module = importlib.import_module(f"otelkit.cli.{name}")
        except ModuleNotFoundError as missing:
            if (missing.name or "otelkit").partition(".")[0] == "otelkit":
                raise  # otelkit's own module: a bug to see, not an extra to install
            # One sub-command's optional packages must not take the others (or --help) down with it.
            _register_unavailable(subparsers, name, extra, missing.name or str(missing))
            continue
        module.register(subparsers)
    return parser


def _register_unavailable(subparsers: Any, name: str, extra: str, missing: str) -> None:
    message = f"otelkit {name} needs the Python package {missing!r}: pip install 'otelkit[{extra}]'"

    def explain(args: argparse.Namespace) -> int:
        print(message, file=sys.stderr)
        return 2

    # Every argument, --help included, is taken as it comes (no option prefix), so any call explains.
    command = subparsers.add_parser(name, help=f"(unavailable: {message})", add_help=False, prefix_chars="\0")
    command.add_argument("rest", nargs="*")
    command.set_defaults(handler=explain)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
