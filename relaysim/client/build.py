"""Rebuild heap.wasm from heap.wat with Debian's wabt (`wat2wasm`).

heap.wasm is committed so the client runs without a toolchain; this script is how it was made,
and `--check` (used by the tests) proves the committed bytes still come from the committed source.

    python -m relaysim.client.build           # rewrite heap.wasm
    python -m relaysim.client.build --check   # exit 1 if heap.wasm differs from a fresh build
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from relaysim.errors import EnvironmentProblem

CLIENT_DIR = Path(__file__).resolve().parent
WAT = CLIENT_DIR / "heap.wat"
WASM = CLIENT_DIR / "heap.wasm"


def assemble(wat: Path = WAT) -> bytes:
    """Return the bytes wat2wasm makes of `wat` (no debug names, so the output is reproducible)."""
    tool = shutil.which("wat2wasm")
    if tool is None:
        raise EnvironmentProblem("wat2wasm not found: install Debian's wabt (apt-get install -y wabt)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "heap.wasm"
        subprocess.run([tool, str(wat), "-o", str(out)], check=True, capture_output=True)
        return out.read_bytes()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    built = assemble()
    if args.check:
        same = WASM.exists() and WASM.read_bytes() == built
        print("heap.wasm is up to date" if same else "heap.wasm differs from heap.wat: rebuild it")
        return 0 if same else 1
    WASM.write_bytes(built)
    print(f"wrote {WASM} ({len(built)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
