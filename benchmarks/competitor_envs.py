"""Separate virtual environments for the cold-start competitors whose pins clash with ours.

    python benchmarks/competitor_envs.py --setup                      # create / update all
    python benchmarks/competitor_envs.py --setup rasteret-upstream    # just one
    python benchmarks/competitor_envs.py                              # status

``coldstart.py`` runs these tools with the interpreter of their own environment
(``benchmarks/.envs/<tool>/bin/python``, gitignored; ``RASTERET_BENCH_ENVS`` moves the
folder) and skips a tool whose environment is missing or incomplete.

* ``rasteret-upstream``: the PyPI release of the original system this project rewrites
  (``rasteret==0.4.1``). Same import name as this project, hence its own environment.
* ``lazycogs``: ``lazycogs`` reads STAC items listed in a stac-geoparquet file through
  rustac's DuckDB client, which loads DuckDB's ``spatial``, ``icu`` and ``parquet``
  extensions and by default downloads them from extensions.duckdb.org. To work
  offline, the environment pins ``rustac`` to the release bundling DuckDB 1.5.5 and
  installs the extensions from PyPI (``duckdb-extension-*==1.5.5``, without their
  ``duckdb`` Python dependency) into ``<env>/duckdb_extensions/v1.5.5/<platform>/``,
  the layout DuckDB expects for an ``extension_directory``. Where those wheels do not
  install (they are Linux x86-64 only), DuckDB downloads the extensions itself.

Set-up uses ``uv`` (``uv venv --python 3.12`` + ``uv pip install``) and is idempotent: an
environment whose marker file lists the same requirements is left alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
MARKER = ".competitor-env.json"
PYTHON = "3.12"
DUCKDB_VERSION = "1.5.5"  # bundled by rustac 0.9.17; must equal the extensions' version


@dataclass(frozen=True)
class Competitor:
    dist: str  # distribution whose version the report shows
    requirements: tuple[str, ...]
    no_deps: tuple[str, ...] = ()  # installed with --no-deps; optional (failures warn)
    post: Callable[[Path], None] | None = field(default=None, compare=False)


def _link_duckdb_extensions(env: Path) -> None:
    """Expose the ``duckdb_extension_*`` wheels' files as a DuckDB extension directory."""
    found = sorted(
        (_site_packages(env) or env).glob(
            f"duckdb_extension_*/extensions/v{DUCKDB_VERSION}/*.duckdb_extension"
        )
    )
    if not found:
        return
    target = duckdb_extension_dir(env) / f"v{DUCKDB_VERSION}" / _duckdb_platform()
    target.mkdir(parents=True, exist_ok=True)
    for ext in found:
        link = target / ext.name
        if link.is_symlink() or link.exists():
            link.unlink()
        try:
            link.symlink_to(ext)
        except OSError:
            shutil.copy2(ext, link)


COMPETITORS: dict[str, Competitor] = {
    "rasteret-upstream": Competitor(
        dist="rasteret",
        requirements=("rasteret==0.4.1", "shapely"),
    ),
    "lazycogs": Competitor(
        dist="lazycogs",
        requirements=("lazycogs==0.7.0", "rustac==0.9.17", "shapely"),
        no_deps=tuple(
            f"duckdb-extension-{name}=={DUCKDB_VERSION}" for name in ("spatial", "icu", "parquet")
        ),
        post=_link_duckdb_extensions,
    ),
}


def env_root() -> Path:
    return Path(os.environ.get("RASTERET_BENCH_ENVS") or HERE / ".envs")


def env_dir(tool: str) -> Path:
    return env_root() / tool


def _python_in(env: Path) -> Path:
    return env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _site_packages(env: Path) -> Path | None:
    found = sorted(env.glob("lib/python3*/site-packages")) or sorted(env.glob("Lib/site-packages"))
    return found[0] if found else None


def duckdb_extension_dir(env: Path) -> Path:
    return env / "duckdb_extensions"


def _duckdb_platform() -> str:
    system = {"Linux": "linux", "Darwin": "osx", "Windows": "windows"}.get(platform.system(), "")
    machine = platform.machine().lower()
    arch = "arm64" if machine in {"arm64", "aarch64"} else "amd64"
    return f"{system}_{arch}"


def _marker(tool: str) -> dict | None:
    try:
        return json.loads((env_dir(tool) / MARKER).read_text())
    except (OSError, ValueError):
        return None


def missing(tool: str) -> str | None:
    """Why ``tool``'s environment cannot be used, or None when it is ready."""
    if tool not in COMPETITORS:
        return f"unknown competitor {tool!r}"
    env = env_dir(tool)
    if not _python_in(env).exists():
        return f"no environment at {env}"
    made = _marker(tool)
    if made is None:
        return f"{env} was not completed by competitor_envs.py --setup"
    if made.get("requirements") != list(COMPETITORS[tool].requirements):
        return f"{env} holds {made.get('requirements')}, not {list(COMPETITORS[tool].requirements)}"
    return None


def interpreter(tool: str) -> Path | None:
    """The Python of ``tool``'s environment, or None when it is not set up."""
    return None if missing(tool) else _python_in(env_dir(tool))


def version(tool: str) -> str:
    """Installed version of the competitor's distribution (``-`` when unknown)."""
    site = _site_packages(env_dir(tool))
    if site is None:
        return "-"
    for dist in metadata.distributions(path=[str(site)]):
        if (dist.metadata["Name"] or "").lower().replace("_", "-") == COMPETITORS[tool].dist:
            return dist.version
    return "-"


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        raise SystemExit("competitor_envs.py needs `uv` on PATH (pip install uv)")
    return uv


def setup(tool: str, *, python: str = PYTHON, force: bool = False) -> Path:
    """Create (or update) ``tool``'s environment; return its interpreter."""
    spec = COMPETITORS[tool]
    env = env_dir(tool)
    if not force and missing(tool) is None:
        print(f"{tool}: ready ({version(tool)}) in {env}", flush=True)
        return _python_in(env)
    uv = _uv()
    if force or not _python_in(env).exists():
        env.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([uv, "venv", "--clear", "--python", python, str(env)], check=True)
    (env / MARKER).unlink(missing_ok=True)
    py = str(_python_in(env))
    subprocess.run([uv, "pip", "install", "--python", py, *spec.requirements], check=True)
    if spec.no_deps:
        done = subprocess.run([uv, "pip", "install", "--python", py, "--no-deps", *spec.no_deps])
        if done.returncode != 0:
            print(
                f"{tool}: could not install {', '.join(spec.no_deps)}; "
                "the tool will fetch what it needs at run time",
                file=sys.stderr,
            )
    if spec.post:
        spec.post(env)
    (env / MARKER).write_text(json.dumps({"requirements": list(spec.requirements)}))
    print(f"{tool}: ready ({version(tool)}) in {env}", flush=True)
    return _python_in(env)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--setup",
        nargs="*",
        metavar="TOOL",
        help=f"create the environments (default: all of {', '.join(COMPETITORS)})",
    )
    parser.add_argument("--force", action="store_true", help="recreate from scratch")
    parser.add_argument("--python", default=PYTHON, help="interpreter for `uv venv` (3.12)")
    args = parser.parse_args(argv)
    if args.setup is None:
        for tool in COMPETITORS:
            why = missing(tool)
            print(f"{tool}: {'ready (' + version(tool) + ')' if why is None else why}")
        return 0
    for tool in args.setup or list(COMPETITORS):
        if tool not in COMPETITORS:
            parser.error(f"unknown competitor {tool!r}; choose from {', '.join(COMPETITORS)}")
        setup(tool, python=args.python, force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
