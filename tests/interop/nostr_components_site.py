"""A page that embeds npm ``nostr-components`` 0.4.3 (MIT; NDK-based ``<nostr-post>`` and ``<nostr-profile>``
web components), written by nobody here, pointed at the relay that serves the page.

``build_site(dest)`` writes ``dest/index.html`` and copies the package's ``dist/`` (installed by
scripts/install into tests/interop/node_modules) next to it, so ``relaysim run --app DEST`` serves both
from the relay's own origin. The page shows seed1's viewer profile and the viewer's newest note; an
inline script sets every component's ``relays`` attribute to this origin's websocket before the
components' module runs, whatever port the relay took. ``python tests/interop/nostr_components_site.py
DEST`` does the same from a shell (scripts/third-party-client).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from relaysim.dataset import build, load_spec, viewer_pubkey
from relaysim.nostr.nip19 import note_encode, npub_encode

PACKAGE = Path(__file__).resolve().parent / "node_modules" / "nostr-components"
VERSION = "0.4.3"

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>nostr-components {version} against relaysim</title>
  <script type="module" src="./dist/nostr-components.es.js"></script>
</head>
<body>
  <h1>nostr-components {version}</h1>
  <nostr-profile data-relaysim npub="{npub}"></nostr-profile>
  <nostr-post data-relaysim noteid="{note}"></nostr-post>
  <script>
    // Runs while the page is parsed, before the deferred module defines the components: every
    // component talks to the relay that served this page.
    for (const el of document.querySelectorAll('[data-relaysim]')) {{
      el.setAttribute('relays', location.origin.replace(/^http/, 'ws') + '/');
    }}
  </script>
</body>
</html>
"""


def installed_version() -> str | None:
    """The installed package's version, None when scripts/install has not installed it."""
    manifest = PACKAGE / "package.json"
    if not manifest.is_file():
        return None
    import json

    return str(json.loads(manifest.read_text())["version"])


def viewer_note() -> tuple[str, str]:
    """seed1's viewer pubkey and the id of the viewer's newest kind-1 note."""
    spec = load_spec("seed1")
    viewer = viewer_pubkey(spec.seed_bytes)
    notes = [ev for ev in build(spec, "ws://127.0.0.1:7447/") if ev.kind == 1 and ev.pubkey == viewer]
    if not notes:
        raise SystemExit("seed1 has no note by its viewer")
    newest = max(notes, key=lambda ev: (ev.created_at, ev.id))
    return viewer, newest.id


def build_site(dest: Path) -> Path:
    """Write the page and the package's dist/ under ``dest``; returns ``dest``."""
    if installed_version() != VERSION:
        raise SystemExit(f"nostr-components {VERSION} is not in {PACKAGE.parent}: run scripts/install")
    viewer, note = viewer_note()
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(PACKAGE / "dist", dest / "dist", dirs_exist_ok=True)
    (dest / "index.html").write_text(
        PAGE.format(version=VERSION, npub=npub_encode(viewer), note=note_encode(note)), encoding="utf-8"
    )
    return dest


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: nostr_components_site.py DEST")
    print(build_site(Path(sys.argv[1])))
