"""What installing rasteret costs every xarray user: ``xarray.backends.list_engines()``.

xarray loads every installed backend's entry point the first time it lists its engines
(the first ``xr.open_dataset`` of any file). This script times that call in fresh
processes with rasteret's entry point and without it (filtered out of the entry-point
list, everything else equal), ``--repeats`` times each, and prints the medians and their
difference. Issue #12's bound: at most 0.2 s more with rasteret.

    python benchmarks/engine_discovery.py              # 3 fresh processes each
    python benchmarks/engine_discovery.py --repeats 7 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

PROBE = r"""
import sys, time
import importlib.metadata as md
if sys.argv[1] == "without":
    original = md.entry_points
    def entry_points(**params):
        found = original(**params)
        if params.get("group") == "xarray.backends":
            return md.EntryPoints(e for e in found if e.name != "rasteret")
        return found
    md.entry_points = entry_points
import xarray as xr
start = time.perf_counter()
engines = xr.backends.list_engines()
elapsed = time.perf_counter() - start
assert ("rasteret" in engines) == (sys.argv[1] == "with"), sorted(engines)
print(elapsed)
"""


def measure(mode: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="write the measurements to this file")
    args = parser.parse_args(argv)
    runs: dict[str, list[float]] = {"with": [], "without": []}
    for _ in range(args.repeats):  # interleaved, so load drifts hit both alike
        for mode in ("without", "with"):
            runs[mode].append(measure(mode))
    medians = {mode: statistics.median(values) for mode, values in runs.items()}
    extra = medians["with"] - medians["without"]
    print(f"list_engines() without rasteret: {medians['without']:.3f} s (median of {args.repeats})")
    print(f"list_engines() with rasteret:    {medians['with']:.3f} s")
    print(f"cost of the rasteret entry point: {extra:+.3f} s (bound: 0.200 s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": runs, "medians": medians, "extra": extra}, f, indent=2)
    return 0 if extra <= 0.2 else 1


if __name__ == "__main__":
    raise SystemExit(main())
