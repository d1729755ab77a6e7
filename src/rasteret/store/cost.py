"""Cost estimates of a read plan: seconds at a given latency, before anything is fetched.

A :class:`CostEstimate` turns the exact counts of a :class:`~rasteret.store.plan.ReadPlan`
(range requests, bytes, decoded pixel bytes) into a time under a simple, stated model:

* **I/O**: requests go out ``in_flight`` at a time, each wave paying one first-byte
  ``latency``; the bytes stream at ``bandwidth``:
  ``io = ceil(requests / in_flight) * latency + bytes / bandwidth``;
* **decode**: the decoded pixel bytes at a per-codec rate per core (:data:`DECODE_RATES`,
  measured with imagecodecs on one core of a 2020s x86 CPU, predictor included) on
  ``cores`` cores: ``decode = decoded_bytes / (rate * cores)``;
* fetch and decode overlap, so ``seconds = max(io, decode)``.

It is an estimate for deciding whether to start a big read (the order of magnitude, and
which of latency, bandwidth or decode binds), not a promise: a real read also pays
Python per chunk and the imports of a fresh process. ``benchmarks/explain_estimate.py``
compares it with measured reads.
"""

from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass

#: Decoded bytes per second on one core, by TIFF compression code.
DECODE_RATES: dict[int, float] = {
    1: 4e9,  # none: a copy
    5: 2.5e8,  # LZW
    7: 1.5e8,  # JPEG
    8: 6e8,  # deflate (libdeflate)
    32946: 6e8,  # deflate (old code)
    32773: 1e9,  # PackBits
    34887: 3e8,  # LERC
    34712: 5e7,  # JPEG 2000
    33003: 5e7,  # JPEG 2000 (Aperio YCbCr)
    33005: 5e7,  # JPEG 2000 (Aperio RGB)
    34925: 1e8,  # LZMA
    50000: 1e9,  # zstd
    50001: 1.5e8,  # WebP
}
#: Rate for compressions not in :data:`DECODE_RATES`.
DEFAULT_DECODE_RATE = 2e8
#: Default bandwidth of one client to an object store, bytes per second.
DEFAULT_BANDWIDTH = 2e8


@dataclass(frozen=True)
class CostEstimate:
    """The estimated time of a read plan under the module's model (all inputs kept)."""

    requests: int
    bytes: int
    decoded_bytes: int
    latency: float
    in_flight: int
    bandwidth: float
    cores: int
    io_seconds: float
    decode_seconds: float

    @property
    def seconds(self) -> float:
        """Fetch and decode overlap: the slower of the two."""
        return max(self.io_seconds, self.decode_seconds)

    @property
    def bound(self) -> str:
        """What binds the read: ``"latency"``, ``"bandwidth"`` or ``"decode"``."""
        if self.decode_seconds >= self.io_seconds:
            return "decode"
        waves = math.ceil(self.requests / self.in_flight) * self.latency if self.requests else 0
        return "latency" if waves >= self.bytes / self.bandwidth else "bandwidth"

    def __str__(self) -> str:
        return (
            f"~{self.seconds:.2f} s at {self.latency * 1000:.0f} ms latency "
            f"({self.requests} request(s) {self.in_flight} in flight: {self.io_seconds:.2f} s "
            f"I/O; {self.decoded_bytes / 1e6:,.1f} MB decoded on {self.cores} core(s): "
            f"{self.decode_seconds:.2f} s; {self.bound}-bound)"
        )

    def _repr_html_(self) -> str:
        return f"<p class='rasteret-cost'>{html.escape(str(self))}</p>"


def estimate_cost(
    requests: int,
    nbytes: int,
    decoded: dict[int, int],
    *,
    latency: float,
    in_flight: int,
    bandwidth: float = DEFAULT_BANDWIDTH,
    cores: int | None = None,
) -> CostEstimate:
    """The :class:`CostEstimate` of ``requests`` range requests moving ``nbytes`` bytes
    and decoding ``decoded`` (decoded bytes per compression code)."""
    if latency < 0 or bandwidth <= 0 or in_flight < 1:
        raise ValueError(
            f"latency={latency!r} must be >= 0, bandwidth={bandwidth!r} > 0 and "
            f"in_flight={in_flight!r} >= 1"
        )
    cores = cores or os.cpu_count() or 1
    waves = math.ceil(requests / in_flight)
    io = waves * latency + nbytes / bandwidth
    decode = sum(
        count / DECODE_RATES.get(code, DEFAULT_DECODE_RATE) for code, count in decoded.items()
    )
    return CostEstimate(
        requests=requests,
        bytes=nbytes,
        decoded_bytes=sum(decoded.values()),
        latency=latency,
        in_flight=in_flight,
        bandwidth=bandwidth,
        cores=cores,
        io_seconds=io,
        decode_seconds=decode / cores,
    )
