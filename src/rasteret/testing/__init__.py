"""Test utilities: a range-capable HTTP object server with counters and fault injection."""

from __future__ import annotations

from rasteret.testing.objserver import Fault, ObjectServer, RequestRecord

__all__ = ["Fault", "ObjectServer", "RequestRecord"]
