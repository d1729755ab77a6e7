"""Long fuzz run of the TIFF header parser and the tile codec (not part of CI).

    .venv/bin/python benchmarks/fuzz.py --seconds 600 --target both
    .venv/bin/python benchmarks/fuzz.py --engine atheris --target header --seconds 300

Engines: ``random`` (the mutation operators of ``tests/_fuzz_harness.py`` driven by a
seeded PRNG; fast, no dependencies) and ``atheris`` (coverage-guided libFuzzer over the
same operators; ``pip install atheris``). Seeds: generated COGs plus the small files of
``$RASTERET_SHARED/corpus`` (default ``../shared``). Prints a JSON tally: executions,
outcomes per distinct error, crashes (untyped exceptions, hangs, allocation above the
budget) with reproducers written to ``--crash-dir``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import _fuzz_harness as fh  # noqa: E402

SHARED = Path(os.environ.get("RASTERET_SHARED", HERE.parents[1] / "shared"))


class Tally:
    """Counts of executions, outcomes and crashes of one target."""

    def __init__(self, crash_dir: Path, autosave: Path | None = None) -> None:
        self.autosave = autosave
        self.executions = 0
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.crashes: list[dict] = []
        self.max_peak = 0
        self.crash_dir = crash_dir

    def record(self, target: str, outcome: fh.Outcome, budget: int, reproducer: dict) -> None:
        self.executions += 1
        self.max_peak = max(self.max_peak, outcome.peak)
        self.outcomes[outcome.signature()] += 1
        if self.autosave is not None and self.executions % 500 == 0:
            self.autosave.write_text(json.dumps(self.summary(), indent=2, default=repr))
        problem = None
        if isinstance(outcome.error, fh.CaseTimeout):
            problem = "hang"
        elif not outcome.typed:
            problem = f"untyped {type(outcome.error).__name__}"
        elif outcome.peak > budget:
            problem = f"peak {outcome.peak / fh.MiB:.1f} MiB"
        if problem is None:
            return
        self.crash_dir.mkdir(parents=True, exist_ok=True)
        path = self.crash_dir / f"{target}-{len(self.crashes)}.json"
        path.write_text(json.dumps({"problem": problem, **reproducer}, default=repr))
        self.crashes.append(
            {"problem": problem, "error": f"{outcome.error!r}"[:300], "reproducer": str(path)}
        )

    def summary(self) -> dict:
        return {
            "executions": self.executions,
            "distinct_outcomes": len(self.outcomes),
            "distinct_errors": len([k for k in self.outcomes if k != "ok"]),
            "ok": self.outcomes.get("ok", 0),
            "crashes": len(self.crashes),
            "max_peak_mib": round(self.max_peak / fh.MiB, 2),
            "outcomes": dict(self.outcomes.most_common()),
            "crash_list": self.crashes[:20],
        }


def _ops(rng: random.Random, n: int, width: int = 1 << 32) -> list[fh.Op]:
    return [(rng.randrange(64), rng.randrange(width), rng.randrange(width)) for _ in range(n)]


def header_random(seeds, tally: Tally, rng: random.Random, deadline: float) -> None:
    while time.monotonic() < deadline:
        index = rng.randrange(len(seeds))
        ops = _ops(rng, rng.choice((1, 1, 2, 3, 5, 8)))
        data = fh.mutate(seeds[index], ops)
        prefetch = rng.choice((16, 64, 512, 4096, 65536))
        outcome = fh.run_header_case(data, prefetch=prefetch)
        tally.record(
            "header",
            outcome,
            fh.header_budget(outcome),
            {"seed": index, "ops": ops, "prefetch": prefetch, "data_hex": data.hex()},
        )


def codec_random(pairs, tally: Tally, rng: random.Random, deadline: float) -> None:
    while time.monotonic() < deadline:
        index = rng.randrange(len(pairs))
        payload, decoding = pairs[index]
        field_ops = _ops(rng, rng.choice((0, 1, 1, 2, 3)), 1 << 16)
        payload_ops = _ops(rng, rng.choice((0, 1, 2, 4)))
        if rng.random() < 0.1:
            payload = pairs[rng.randrange(len(pairs))][0]  # another codec's payload
        payload = fh.mutate(payload, payload_ops)
        mutated = fh.mutate_decoding(decoding, field_ops)
        rows = fh.ROWS[rng.randrange(len(fh.ROWS))]
        outcome = fh.run_codec_case(payload, mutated, rows)
        tally.record(
            "codec",
            outcome,
            fh.codec_budget(mutated),
            {"decoding": repr(mutated), "rows": rows, "payload_hex": payload.hex()[:20000]},
        )


def atheris_run(target: str, seeds, pairs, tally: Tally, seconds: int) -> None:
    import atheris

    def one_input(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        if target == "header":
            index = fdp.ConsumeIntInRange(0, len(seeds) - 1)
            ops = [
                (fdp.ConsumeIntInRange(0, 63), fdp.ConsumeInt(4), fdp.ConsumeInt(4))
                for _ in range(fdp.ConsumeIntInRange(1, 6))
            ]
            mutated = fh.mutate(seeds[index], ops)
            outcome = fh.run_header_case(mutated, prefetch=fdp.ConsumeIntInRange(16, 65536))
            tally.record("header", outcome, fh.header_budget(outcome), {"input_hex": data.hex()})
        else:
            index = fdp.ConsumeIntInRange(0, len(pairs) - 1)
            payload, decoding = pairs[index]
            field_ops = [
                (fdp.ConsumeIntInRange(0, 255), fdp.ConsumeIntInRange(0, 255), 0)
                for _ in range(fdp.ConsumeIntInRange(0, 3))
            ]
            payload_ops = [
                (fdp.ConsumeIntInRange(0, 63), fdp.ConsumeInt(4), fdp.ConsumeInt(4))
                for _ in range(fdp.ConsumeIntInRange(0, 4))
            ]
            mutated = fh.mutate_decoding(decoding, field_ops)
            outcome = fh.run_codec_case(fh.mutate(payload, payload_ops), mutated, None)
            tally.record("codec", outcome, fh.codec_budget(mutated), {"input_hex": data.hex()})

    atheris.instrument_all()  # coverage of every loaded module (rasteret.tiff included)
    atheris.Setup(
        [sys.argv[0], f"-max_total_time={seconds}", "-rss_limit_mb=4096", "-timeout=30"],
        one_input,
    )
    atheris.Fuzz()  # libFuzzer exits the process: the tally is autosaved (--out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=("header", "codec", "both"), default="both")
    parser.add_argument("--engine", choices=("random", "atheris"), default="random")
    parser.add_argument("--seconds", type=float, default=60.0, help="per target")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-corpus", action="store_true")
    parser.add_argument("--crash-dir", type=Path, default=Path("fuzz-crashes"))
    parser.add_argument("--out", type=Path, help="write the JSON tally here too")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        seeds = fh.generated_seeds(Path(tmp))
    corpus = [] if args.no_corpus else fh.corpus_seeds(SHARED / "corpus")
    seeds += corpus
    pairs = fh.seed_blocks(seeds)
    targets = ("header", "codec") if args.target == "both" else (args.target,)
    report: dict = {
        "engine": args.engine,
        "seed": args.seed,
        "seeds": {"generated": len(seeds) - len(corpus), "corpus": len(corpus)},
        "codec_pairs": len(pairs),
    }
    for target in targets:
        autosave = args.out.with_suffix(f".{target}.json") if args.out else None
        tally = Tally(args.crash_dir, autosave if args.engine == "atheris" else None)
        rng = random.Random(f"{args.seed}-{target}")
        started = time.monotonic()
        if args.engine == "atheris":
            atheris_run(target, seeds, pairs, tally, int(args.seconds))
        elif target == "header":
            header_random(seeds, tally, rng, started + args.seconds)
        else:
            codec_random(pairs, tally, rng, started + args.seconds)
        report[target] = {"seconds": round(time.monotonic() - started, 1), **tally.summary()}
        print(json.dumps({target: {k: v for k, v in report[target].items() if k != "outcomes"}}))
    text = json.dumps(report, indent=2, default=repr)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
