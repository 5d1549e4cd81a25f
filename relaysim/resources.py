"""Where the files relaysim ships live: dataset specs, scenarios, the built-in adapter, the client.

They are package data, found next to this module, so the same lookup works in an installed wheel
(site-packages/relaysim/...) and in an editable install of the repository. In the repository,
``relaysim/datasets`` and ``relaysim/scenarios`` are symlinks to the top-level ``datasets/`` and
``scenarios/`` folders: one copy of each file, which the wheel build copies in as real files.

relaysim needs real files, not just readable resources: the relay serves the client folder to a
browser and the dataset cache keys on the spec file. pip always installs a wheel unzipped, so the
package is a folder on disk; :func:`package_dir` says so plainly if it is ever imported from a zip.

This module imports nothing from relaysim, so any module may use it without an import cycle.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["builtin_adapter_path", "client_dir", "datasets_dir", "package_dir", "scenarios_dir"]


def package_dir() -> Path:
    """The folder the ``relaysim`` package was imported from."""
    root = files(__package__ or "relaysim")
    if not isinstance(root, Path):
        raise RuntimeError(f"relaysim must be installed as files on disk, not imported from {root}")
    return root


def datasets_dir() -> Path:
    """The shipped dataset specs: ``<name>.toml`` with its ``<name>.sha256`` beside it."""
    return package_dir() / "datasets"


def scenarios_dir() -> Path:
    """The shipped scenarios: ``<name>.toml``, run as ``relaysim run <name>``."""
    return package_dir() / "scenarios"


def builtin_adapter_path() -> Path:
    """The adapter file of the reference client (``--adapter builtin``)."""
    return package_dir() / "scenario" / "adapters" / "builtin.toml"


def client_dir() -> Path:
    """The reference client's static files, served at ``/`` by the relay."""
    return package_dir() / "client"
