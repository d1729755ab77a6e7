"""Start, stop and wait for the local servers of :mod:`rasteret.testing` (stdlib only).

Two kinds: an in-process server (``socketserver`` / ``werkzeug``) served from a daemon
thread (:func:`serve_in_thread`, :func:`stop_thread_server`), and an external program
(:func:`wait_for_port`, :func:`stop_process`). :class:`ServerContext` gives every server
class ``with Server(...) as server:`` from its ``start`` / ``stop``.
"""

from __future__ import annotations

import abc
import socket
import subprocess
import threading
import time
from types import TracebackType
from typing import Any, Self


class ServerContext(abc.ABC):
    """``with server:`` calls ``start()`` (which returns the server) and, on exit, ``stop()``."""

    @abc.abstractmethod
    def start(self) -> Self:
        """Start serving; return ``self``."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop serving and release every resource (idempotent)."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_in_thread(server: Any, name: str, **serve_options: Any) -> threading.Thread:
    """Run ``server.serve_forever(**serve_options)`` in a started daemon thread."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs=serve_options, daemon=True, name=name
    )
    thread.start()
    return thread


def stop_thread_server(server: Any, thread: threading.Thread | None) -> None:
    """Stop a :func:`serve_in_thread` server, close its socket and join its thread."""
    server.shutdown()
    server.server_close()
    if thread is not None:
        thread.join(timeout=5)


def free_port(host: str) -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    process: subprocess.Popen[bytes], host: str, port: int, name: str, timeout: float
) -> None:
    """Wait until ``process`` accepts TCP connections on ``host:port``.

    Raises ``RuntimeError`` when it exits first (with its stderr) or after ``timeout`` s.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"{name} exited with {process.returncode}: {err}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not listen on {host}:{port}")


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Terminate ``process`` (kill it after ``timeout`` s) and close its stderr pipe."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
    if process.stderr is not None:
        process.stderr.close()
