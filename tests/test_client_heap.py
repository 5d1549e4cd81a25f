"""The client without a browser: heap.wasm is what heap.wat assembles to, the allocator counts
exactly, and the JS modules parse.

The allocator runs in Node (a real WebAssembly engine, V8 like Chromium's) so its arithmetic is
checked without a browser; the browser tests check the same counters through the hooks.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from relaysim.client import CLIENT_DIR
from relaysim.client.build import WASM, assemble, main


def test_committed_wasm_is_what_the_wat_assembles_to() -> None:
    if shutil.which("wat2wasm") is None:
        pytest.skip("wat2wasm (Debian wabt) is not installed")
    assert assemble() == WASM.read_bytes()
    assert main(["--check"]) == 0


NODE_SCRIPT = r"""
const fs = require('fs');
const bytes = fs.readFileSync(process.argv[1]);
WebAssembly.instantiate(bytes, {}).then(({ instance }) => {
  const x = instance.exports;
  const out = { base: x.heap_base(), sys0: x.sys() >>> 0, ptrs: [] };
  for (const [size, site] of [[0, 1], [1, 1], [7, 2], [8, 2], [9, 3], [70000, 4], [5, 99], [3, -1]]) {
    out.ptrs.push(x.malloc(size, site) >>> 0);
  }
  x.free(out.ptrs[1]);
  out.total = x.total_alloc() >>> 0;
  out.mallocs = x.mallocs() >>> 0;
  out.inuse = x.heap_inuse() >>> 0;
  out.sys = x.sys() >>> 0;
  out.sites = [1, 2, 3, 4, 63].map((s) => [x.site_count(s) >>> 0, x.site_bytes(s) >>> 0]);
  const words = new Uint32Array(x.memory.buffer, 0, 6);
  out.header = Array.from(words);
  console.log(JSON.stringify(out));
});
"""


def test_bump_allocator_counts_every_byte_it_hands_out() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    done = subprocess.run(
        [node, "-e", NODE_SCRIPT, str(CLIENT_DIR / "heap.wasm")],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    out = json.loads(done.stdout)
    base = out["base"]
    assert base == 1024
    assert out["sys0"] == 65536
    # sizes rounded up to 8: 0, 8, 8, 8, 16, 70000, 8, 8 -> pointers are the running sums
    rounded = [0, 8, 8, 8, 16, 70000, 8, 8]
    expected_ptrs = [base + sum(rounded[:i]) for i in range(len(rounded))]
    assert out["ptrs"] == expected_ptrs
    assert out["total"] == out["inuse"] == sum(rounded) == 70056
    assert out["mallocs"] == 8
    assert out["sys"] == 2 * 65536  # grew by one page for the 70000-byte block
    # site 99 and site -1 (as u32, huge) land in the overflow bucket 63; free changes nothing
    assert out["sites"] == [[2, 8], [2, 16], [1, 16], [1, 70000], [2, 16]]
    assert out["header"] == [0x50485352, base + 70056, base, 70056, 8, 64]


@pytest.mark.parametrize("name", ["host.mjs", "worker.mjs"])
def test_client_modules_parse(name: str) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    done = subprocess.run(
        [node, "--check", str(CLIENT_DIR / name)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
