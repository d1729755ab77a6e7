"""The ``rasteret`` command line (``rasteret --help``)."""

from __future__ import annotations

import argparse
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rasteret`` command."""
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from rasteret.demo import run_demo

        summary = run_demo(
            args.out, scenes=args.scenes, size=args.size, latency=args.latency_ms / 1000
        )
        print(summary.render())
        return 0
    _parser().print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
