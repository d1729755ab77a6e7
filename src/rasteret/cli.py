"""The ``rasteret`` command line (``rasteret --help``)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from rasteret._version import __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rasteret",
        description="Index-first access to collections of cloud-native GeoTIFFs.",
    )
    parser.add_argument("--version", action="version", version=f"rasteret {__version__}")
    commands = parser.add_subparsers(dest="command")

    demo = commands.add_parser(
        "demo",
        help="generate sample COGs, serve them over local HTTP, index them, compute NDVI",
        description=(
            "The main job on built-in sample data: writes a small Sentinel-2-like "
            "collection (no download), serves it from a local HTTP object server, builds "
            "the index, opens it with xarray, computes an NDVI time series, prints a "
            "summary with request counts and writes a PNG quick-look."
        ),
    )
    demo.add_argument("--out", default="rasteret-demo", help="output folder (default: %(default)s)")
    demo.add_argument("--scenes", type=int, default=6, help="number of scenes (default: 6)")
    demo.add_argument("--size", type=int, default=1024, help="scene size in pixels (default: 1024)")
    demo.add_argument(
        "--latency-ms", type=float, default=0.0, help="injected first-byte latency of the server"
    )

    from rasteret._cli import collections, datasets

    collections.register(commands)
    datasets.register(commands)
    alias = commands.add_parser("build", help="build a catalog dataset (= datasets build)")
    datasets.add_build_arguments(alias)
    return parser


def _join_negative_values(argv: Sequence[str]) -> list[str]:
    """``--bbox -122.5,37.7,...`` → ``--bbox=-122.5,37.7,...`` (argparse would read an option)."""
    out: list[str] = []
    tokens = list(argv)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "--bbox" and i + 1 < len(tokens) and tokens[i + 1].startswith("-"):
            out.append(f"{token}={tokens[i + 1]}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out


#: Exit status when stdout is closed early (``rasteret ... | head``): as a SIGPIPE'd tool.
EXIT_BROKEN_PIPE = 141


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rasteret`` command: exit 0 on success, 1 on an error, 2 on a
    usage error, 141 (quietly) when the reader of stdout went away."""
    try:
        code = _main(argv)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # the consumer (``head``) closed the pipe: no traceback, and none at exit either
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(_join_negative_values(sys.argv[1:] if argv is None else argv))
    if args.command == "demo":
        from rasteret.demo import run_demo

        summary = run_demo(
            args.out, scenes=args.scenes, size=args.size, latency=args.latency_ms / 1000
        )
        print(summary.render())
        return 0
    handler = getattr(args, "handler", None)
    if handler is None:  # no command: a usage error
        _parser().print_help(sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="rasteret: %(levelname)s: %(message)s")
    from rasteret._cli.output import fail
    from rasteret.errors import RasteretError

    try:
        return handler(args)
    except (RasteretError, ValueError, KeyError, FileNotFoundError, NotImplementedError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        return fail(str(message), as_json=getattr(args, "json", False), kind=type(exc).__name__)


if __name__ == "__main__":
    sys.exit(main())
