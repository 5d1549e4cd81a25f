"""Deterministic, signed, seeded Nostr datasets (spec -> events -> JSONL) and JSONL import.

Call :func:`load_spec` (``"seed1"`` or a path), then :func:`build` for the events or
:func:`ensure_built` for a cached JSONL file; :func:`read_jsonl` loads and verifies any relay's
export; :func:`cast_for` gives the traffic generator the dataset's keys and note ids.
"""

from relaysim.dataset.generate import (
    DEFAULT_RELAY_URL,
    Cast,
    Generated,
    NoteRef,
    build,
    cast_for,
    check_relay_url,
    generate,
)
from relaysim.dataset.info import Info, dataset_info, format_info
from relaysim.dataset.jsonl import ImportResult, LineError, encode_jsonl, read_jsonl, sha256_file, write_jsonl
from relaysim.dataset.keys import viewer_pubkey
from relaysim.dataset.registry import cache_path, ensure_built, known_datasets, load_spec
from relaysim.dataset.spec import DatasetSpec, parse_spec, spec_digest, spec_sha256

__all__ = [
    "DEFAULT_RELAY_URL",
    "Cast",
    "DatasetSpec",
    "Generated",
    "ImportResult",
    "Info",
    "LineError",
    "NoteRef",
    "build",
    "cache_path",
    "cast_for",
    "check_relay_url",
    "dataset_info",
    "encode_jsonl",
    "ensure_built",
    "format_info",
    "generate",
    "known_datasets",
    "load_spec",
    "parse_spec",
    "read_jsonl",
    "sha256_file",
    "spec_digest",
    "spec_sha256",
    "viewer_pubkey",
    "write_jsonl",
]
