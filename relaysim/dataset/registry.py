"""Finding specs by name and keeping built datasets in a cache.

A name (``seed1``) means ``<name>.toml`` in ``$RELAYSIM_DATASETS`` when set, else among the specs
shipped with the package (:func:`relaysim.resources.datasets_dir`: the repository's ``datasets/`` in
an editable install); anything that looks like a path (has a ``/`` or ends in
``.toml``) is read as a spec file. Builds are cached under ``$RELAYSIM_CACHE/datasets`` (default
``~/.cache/relaysim/datasets``) as ``<name>-<digest>.jsonl``, where the digest covers the spec,
the relay URL and the generator version: a changed spec or URL is a different file, never a
stale one. Files are written to a temp name and renamed, so a crash never leaves half a dataset.

A relay on an ephemeral port builds one file per URL (its hints name itself), so after each build
the cache keeps the newest :data:`KEEP_PER_NAME` files of that dataset and removes older ones
once they are :data:`PRUNE_AFTER_SECONDS` old (so a file another process just got is not pulled
from under it).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from relaysim.dataset.generate import DEFAULT_RELAY_URL, build, check_relay_url
from relaysim.dataset.jsonl import write_jsonl
from relaysim.dataset.spec import DatasetSpec, read_spec_file, spec_digest
from relaysim.errors import UsageError
from relaysim.resources import datasets_dir

__all__ = [
    "cache_dir",
    "cache_path",
    "dataset_dirs",
    "ensure_built",
    "known_datasets",
    "load_spec",
    "spec_path",
]

KEEP_PER_NAME = 8
PRUNE_AFTER_SECONDS = 600


def dataset_dirs() -> list[Path]:
    """Where named specs are looked up, first match wins."""
    dirs = []
    if os.environ.get("RELAYSIM_DATASETS"):
        dirs.append(Path(os.environ["RELAYSIM_DATASETS"]))
    dirs.append(datasets_dir())
    return dirs


def known_datasets() -> list[str]:
    names: list[str] = []
    for directory in dataset_dirs():
        if directory.is_dir():
            names += [p.stem for p in sorted(directory.glob("*.toml")) if p.stem not in names]
    return names


def _looks_like_path(name_or_path: str) -> bool:
    return "/" in name_or_path or os.sep in name_or_path or name_or_path.endswith(".toml")


def spec_path(name_or_path: str | Path) -> Path:
    """The spec file a name or path refers to; UsageError (listing known names) if none."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or _looks_like_path(text):
        return Path(text)
    for directory in dataset_dirs():
        candidate = directory / f"{text}.toml"
        if candidate.is_file():
            return candidate
    known = ", ".join(known_datasets()) or "none"
    raise UsageError(f"unknown dataset '{text}' (known: {known}; or give a path to a .toml spec)")


def load_spec(name_or_path: str | Path) -> DatasetSpec:
    """Read the spec called ``name_or_path`` (``seed1``) or stored at that path."""
    return read_spec_file(spec_path(name_or_path))


def cache_dir() -> Path:
    root = os.environ.get("RELAYSIM_CACHE")
    if root:
        return Path(root) / "datasets"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "relaysim" / "datasets"


def cache_path(spec: DatasetSpec, relay_url: str) -> Path:
    return cache_dir() / f"{spec.name}-{spec_digest(spec, relay_url)[:16]}.jsonl"


def ensure_built(name: str | Path | DatasetSpec, relay_url: str | None = None) -> Path:
    """The JSONL path of a dataset, building it into the cache first if it is not there."""
    spec = name if isinstance(name, DatasetSpec) else load_spec(name)
    url = check_relay_url(relay_url or DEFAULT_RELAY_URL)
    path = cache_path(spec, url)
    if not path.is_file():
        write_jsonl(path, build(spec, url))
        prune_cache(spec.name, keep=path)
    return path


def prune_cache(name: str, keep: Path, now: float | None = None) -> list[Path]:
    """Remove old cached builds of ``name`` beyond the newest :data:`KEEP_PER_NAME`; returns them."""
    now = time.time() if now is None else now
    aged = []
    for candidate in keep.parent.glob(f"{name}-*.jsonl"):
        digest = candidate.stem[len(name) + 1 :]
        if len(digest) != 16 or not all(c in "0123456789abcdef" for c in digest):
            continue  # another dataset whose name starts with ours
        with contextlib.suppress(OSError):  # another process may prune at the same time
            aged.append((candidate.stat().st_mtime, candidate.name, candidate))
    aged.sort(reverse=True)
    removed = []
    for mtime, _, candidate in aged[KEEP_PER_NAME:]:
        if candidate != keep and now - mtime > PRUNE_AFTER_SECONDS:
            with contextlib.suppress(OSError):
                candidate.unlink()
                removed.append(candidate)
    return removed
