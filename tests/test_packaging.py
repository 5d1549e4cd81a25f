"""The wheel as a new user meets it: built from the source tree, installed into a fresh venv, run from
a folder that is not the repository.

An editable install hides packaging mistakes: the repository's files are right there. So the
fixture builds the wheel from a copy of the sources (``pip wheel --no-build-isolation``: the build
backend comes from the test extra, nothing is fetched, and no ``build/`` left over from an earlier
build in the work tree can slip stale files into it), installs it with ``--no-deps`` into a venv made
with ``--system-site-packages`` (the dependencies are already there) and runs ``relaysim`` from an
empty temporary folder with a fresh dataset cache.

The system site-packages holds the editable install of this repository too. Its import hook comes
after the venv's own site-packages, so the wheel's copy wins; every test checks that, through
``relaysim.__file__`` and the paths the relay reports, rather than trusting it.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# What the build reads: pyproject.toml names README.md; relaysim/datasets and relaysim/scenarios are
# symlinks to the top-level folders, copied as symlinks so they still resolve inside the copy.
SOURCES = ("pyproject.toml", "README.md", "relaysim", "datasets", "scenarios")
SEED1_SHA256 = (REPO / "datasets" / "seed1.sha256").read_text().split()[0]


@dataclass(frozen=True)
class Installed:
    """A wheel installed into its own venv, and an empty folder outside the repository to run in."""

    wheel: Path
    venv: Path
    workdir: Path
    env: dict[str, str]

    @property
    def package_dir(self) -> Path:
        return self.venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / (
            "site-packages/relaysim"
        )

    def command(self, *args: str) -> list[str]:
        return [str(self.venv / "bin" / "relaysim"), *args]

    def run(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args), cwd=self.workdir, env=self.env, capture_output=True, text=True,
            timeout=timeout, check=False,
        )


def _clean_env(cache: Path) -> dict[str, str]:
    """The caller's environment without anything that points Python or relaysim at the repository."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "RELAYSIM_DATASETS")}
    env.update(PYTHONNOUSERSITE="1", PYTHONUNBUFFERED="1", RELAYSIM_CACHE=str(cache))
    return env


def _check(cmd: list[str], cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("packaging")
    src = root / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
    for name in SOURCES:
        origin = REPO / name
        if origin.is_dir():
            shutil.copytree(origin, src / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(origin, src / name)
    env = _clean_env(root / "cache")
    dist = root / "dist"
    _check([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
            "-w", str(dist), str(src)], env=env, cwd=root)
    (wheel,) = dist.glob("relaysim-*.whl")
    venv = root / "venv"
    _check([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], env=env, cwd=root)
    # --force-reinstall: the editable install in the system site-packages has the same version, and
    # pip would otherwise call the wheel "already satisfied" and install nothing into the venv.
    _check([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--no-index",
            "--force-reinstall", str(wheel)], env=env, cwd=root)
    workdir = root / "elsewhere"
    workdir.mkdir()
    return Installed(wheel=wheel, venv=venv, workdir=workdir, env=env)


def _shipped_data() -> set[str]:
    """Every data file the wheel must carry, named from the repository (not from pyproject.toml)."""
    names = {"relaysim/py.typed", "relaysim/scenario/adapters/builtin.toml"}
    datasets = (REPO / "datasets").iterdir()
    names |= {f"relaysim/datasets/{p.name}" for p in datasets if p.suffix in (".toml", ".sha256")}
    names |= {f"relaysim/scenarios/{p.name}" for p in (REPO / "scenarios").glob("*.toml")}
    client = REPO / "relaysim" / "client"
    names |= {
        f"relaysim/client/{p.relative_to(client)}"
        for p in client.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    }
    return names


def test_wheel_carries_the_shipped_data_and_nothing_from_outside_the_package(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
    missing = _shipped_data() - names
    assert not missing, f"missing from the wheel (add to [tool.setuptools.package-data]): {sorted(missing)}"
    assert "relaysim/datasets/seed1.toml" in names and "relaysim/scenarios/idle.toml" in names
    strays = {n for n in names if not n.startswith(("relaysim/", "relaysim-"))}
    assert not strays, f"the wheel carries files outside the package: {sorted(strays)}"
    assert not {n for n in names if "__pycache__" in n or n.endswith(".pyc")}


def test_installed_package_is_the_wheel_not_the_repository(installed: Installed) -> None:
    script = (
        "import relaysim, relaysim.resources as r; "
        "print(relaysim.__file__); print(r.datasets_dir()); print(r.scenarios_dir())"
    )
    done = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-I", "-c", script],
        cwd=installed.workdir, env=installed.env, capture_output=True, text=True, timeout=60, check=True,
    )
    module, datasets, scenarios = (Path(line) for line in done.stdout.split())
    assert module == installed.package_dir / "__init__.py"
    # In the wheel the symlinked folders are real folders with real files.
    assert datasets == installed.package_dir / "datasets" and not datasets.is_symlink()
    assert (datasets / "seed1.toml").is_file() and (scenarios / "idle.toml").is_file()


def test_dataset_info_seed1_builds_the_shipped_spec_from_another_folder(installed: Installed) -> None:
    done = installed.run("dataset", "info", "seed1", timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = dict(line.split(None, 1) for line in done.stdout.splitlines() if line.startswith("sha256"))
    # The spec in the wheel rebuilds, byte for byte, the dataset whose hash the wheel ships with it.
    shipped = (installed.package_dir / "datasets" / "seed1.sha256").read_text().split()[0]
    assert lines["sha256"].strip() == shipped == SEED1_SHA256
    assert str(installed.env["RELAYSIM_CACHE"]) in done.stdout


def _read_lines(stream: object, into: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.put(line)
    into.put("")


@pytest.fixture
def serving(installed: Installed) -> Iterator[tuple[subprocess.Popen[str], dict[str, str], queue.Queue[str]]]:
    """``relaysim serve --dataset seed1 --port 0`` from the venv, with the URLs it printed when ready."""
    proc = subprocess.Popen(
        installed.command("serve", "--dataset", "seed1", "--port", "0"),
        cwd=installed.workdir, env=installed.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True).start()
    urls: dict[str, str] = {}
    seen: list[str] = []
    deadline = time.monotonic() + 120
    try:
        while "ready" not in urls:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            seen.append(line)
            assert line, f"serve exited before it was ready: {''.join(seen)}"
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "relaysim:":
                urls[parts[1]] = parts[2]
        yield proc, urls, lines
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_serve_seed1_answers_stats_and_serves_the_client_then_leaves_on_sigterm(
    installed: Installed, serving: tuple[subprocess.Popen[str], dict[str, str], queue.Queue[str]]
) -> None:
    proc, urls, lines = serving
    assert urls["stats"].startswith("http://127.0.0.1:")
    with urllib.request.urlopen(urls["stats"], timeout=10) as answer:
        stats = json.load(answer)
    relay = stats["relay"]
    assert relay["dataset"] == "seed1" and relay["sha256"] == SEED1_SHA256
    assert Path(relay["static_root"]).resolve() == (installed.package_dir / "client").resolve()
    assert Path(relay["path"]).is_relative_to(installed.env["RELAYSIM_CACHE"])
    with urllib.request.urlopen(urls["app"], timeout=10) as answer:
        assert answer.read() == (REPO / "relaysim" / "client" / "index.html").read_bytes()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    tail = []
    while (line := lines.get(timeout=10)) != "":
        tail.append(line)
    assert any("SIGTERM" in line for line in tail), "".join(tail)


@pytest.mark.browser
def test_run_idle_passes_from_another_folder(installed: Installed) -> None:
    if shutil.which("chromium") is None or shutil.which("chromedriver") is None:
        pytest.skip("needs Debian's chromium and chromium-driver (scripts/install)")
    report = installed.workdir / "idle-report.json"
    done = installed.run(
        "run", "idle", "--idle-window", "2", "--idle-settle", "1", "--report", str(report), timeout=240
    )
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(report.read_text())
    assert data["verdict"] == "PASS"
    assert data["environment"]["dataset_sha256"] == SEED1_SHA256
