"""Every first-party distribution builds a wheel under its own registry name that names
the core as ``argustrade-core``; the core's wheel alone, in a fresh environment where the
lab's and the orchestrator's dependencies cannot be imported, runs the demo."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from argus_core.ledger import Ledger
from argus_core.plugins import CORE_DISTRIBUTION

pytestmark = pytest.mark.slow  # builds wheels; runs the core's demo in a fresh venv

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTIONS = [ROOT, *sorted(p.parent for p in ROOT.glob("plugins/*/pyproject.toml"))]
#: What only the lab and the orchestrator bring; the core must run the demo without them.
NOT_IN_CORE = ("anthropic", "scipy", "arch", "numba", "sklearn", "pyseccomp", "dask",
               "argus_lab", "argus_orchestrator")
#: The same, as distribution names in the core's requirements.
NOT_REQUIRED_BY_CORE = ("anthropic", "scipy", "arch", "numba", "scikit-learn", "pyseccomp",
                        "dask", "argustrade-lab", "argustrade-orchestrator")


def _build(folder: Path, out: Path) -> Path:
    done = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation",
                           "--outdir", str(out), str(folder)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{folder.name}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    stem = _name(folder).replace("-", "_")
    (wheel,) = [w for w in out.glob("*.whl") if w.name.split("-")[0] == stem]
    return wheel


def _name(folder: Path) -> str:
    import tomllib

    return str(tomllib.loads((folder / "pyproject.toml").read_text())["project"]["name"])


def _metadata(wheel: Path) -> tuple[dict[str, str], list[str], list[str]]:
    """(headers, unconditional requirement names, files) of a wheel."""
    with zipfile.ZipFile(wheel) as z:
        files = z.namelist()
        (meta,) = [n for n in files if n.endswith(".dist-info/METADATA")]
        msg = Parser().parsestr(z.read(meta).decode())
    requires = [Requirement(r) for r in msg.get_all("Requires-Dist") or []]
    names = [canonicalize_name(r.name) for r in requires
             if r.marker is None or "extra" not in str(r.marker)]
    return dict(msg.items()), names, files


def test_every_distribution_builds_under_its_own_name_and_names_the_core(tmp_path: Path
                                                                          ) -> None:
    seen: dict[str, str] = {}
    for folder in DISTRIBUTIONS:
        wheel = _build(folder, tmp_path)
        headers, requires, files = _metadata(wheel)
        name = headers["Name"]
        assert name not in seen, f"{folder.name} and {seen[name]} are both {name!r}"
        seen[name] = folder.name
        assert not name.startswith("argus-core"), name  # someone else's product
        packages = {f.split("/")[0] for f in files if f.endswith(".py")}
        assert all(any(f == f"{p}/py.typed" for f in files) for p in packages), \
            f"{name}: every package ships py.typed ({sorted(packages)})"
        if folder == ROOT:
            assert name == CORE_DISTRIBUTION
            assert packages == {"argus_core"}, packages
            assert not set(requires) & set(NOT_REQUIRED_BY_CORE), requires
            assert "argus_core/_examples/demo.toml" in files  # `argus demo` from a wheel
        else:
            assert CORE_DISTRIBUTION in requires, f"{name} requires {requires}"
            assert "argus_core" not in packages, f"{name} ships a copy of the core"
    assert len(seen) == len(DISTRIBUTIONS) >= 9


_BLOCKER = f'''
"""Make the lab's and the orchestrator's dependencies unimportable in this environment."""
import importlib.abc
import sys

BLOCKED = {NOT_IN_CORE!r}


class _Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)",
                                      name=name)
        return None


sys.meta_path.insert(0, _Blocked())
'''


def test_the_core_wheel_alone_runs_the_demo(tmp_path: Path) -> None:
    import site
    import sysconfig

    wheel = _build(ROOT, tmp_path / "dist")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=60)
    python = str(venv / "bin" / "python")
    purelib = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                                   "['purelib'])"], check=True, text=True,
                                  capture_output=True, timeout=60).stdout.strip())
    # The core's own dependencies come from this environment (offline); the lab's and the
    # orchestrator's cannot be imported at all; first-party plugins are not loaded.
    parents = dict.fromkeys([sysconfig.get_paths()["purelib"],
                             sysconfig.get_paths()["platlib"], *site.getsitepackages()])
    (purelib / "_argus_block.py").write_text(_BLOCKER)
    (purelib / "_argus_block.pth").write_text("import _argus_block\n")
    (purelib / "zz_argus_parent_env.pth").write_text(
        "".join(f"import site; site.addsitedir({p!r})\n" for p in parents))
    subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "-q",
                    "--no-deps", str(wheel)], check=True, timeout=300, capture_output=True)
    from argus_core.plugins import KNOWN_DISTRIBUTIONS

    env = {**os.environ, "ARGUS_BLOCK_PLUGINS": ",".join(KNOWN_DISTRIBUTIONS),
           "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("PYTHONPATH", None)
    def python_c(code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([python, "-c", code], env=env, cwd=tmp_path, text=True,
                              capture_output=True, timeout=60)

    core = python_c("import argus_core; print(argus_core.__file__)")
    assert core.stdout.startswith(str(venv)), core  # the wheel's copy, not the checkout's
    assert "blocked by the test" in python_c("import scipy").stderr
    run_dir = tmp_path / "demo"
    demo = subprocess.run([python, "-m", "argus_core.cli", "demo", "--run-dir", str(run_dir),
                           "--no-progress"], env=env, cwd=tmp_path, text=True,
                          capture_output=True, timeout=600)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert (run_dir / "report.html").exists()
    with Ledger.in_dir(run_dir) as ledger:
        assert ledger.query("select count(*) as n from fills")[0]["n"] > 0
