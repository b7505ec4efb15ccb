"""``requirements-dev.txt`` lists every first-party distribution, each after the
first-party distributions it depends on (with the extras the line asks for): pip 23.2
(Python 3.11's bundled pip, what a fresh machine has) looks a first-party dependency up
on the package registry, where it does not exist, when its editable line comes later in
the file than the plugin that needs it ("No matching distribution found for
argustrade-multivenue")."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def _project(folder: Path) -> dict[str, object]:
    return tomllib.loads((folder / "pyproject.toml").read_text())["project"]


def _requirement_name(text: str) -> str:
    return canonicalize_name(Requirement(text).name)


def test_requirements_dev_lists_every_first_party_dependency_before_its_dependents() -> None:
    folders = [ROOT, *sorted(p.parent for p in ROOT.glob("plugins/*/pyproject.toml"))]
    name_of = {f.resolve(): canonicalize_name(str(_project(f)["name"])) for f in folders}
    first_party = set(name_of.values())
    listed: list[str] = []
    extras_of: dict[str, list[str]] = {}
    for line in (ROOT / "requirements-dev.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-e "):
            spec = line[3:].strip()
            path = (ROOT / spec.split("[")[0]).resolve()
            assert path in name_of, f"requirements-dev.txt: {line!r} is not a distribution here"
            listed.append(name_of[path])
            extras_of[name_of[path]] = (spec.split("[")[1].rstrip("]").split(",")
                                        if "[" in spec else [])
    plugins = {n for f, n in name_of.items() if f != ROOT.resolve() and
               not f.name.startswith("_")}
    assert plugins <= set(listed), f"not in requirements-dev.txt: {sorted(plugins - set(listed))}"
    for folder, name in name_of.items():
        if name not in listed:
            continue
        project = _project(folder)
        extras: dict[str, list[str]] = project.get("optional-dependencies", {})  # type: ignore[assignment]
        wanted = [*project.get("dependencies", []),  # type: ignore[misc]
                  *(r for e in extras_of[name] for r in extras.get(e.strip(), []))]
        needs = {_requirement_name(str(r)) for r in wanted} & first_party
        for dep in needs:
            assert dep in listed and listed.index(dep) < listed.index(name), (
                f"requirements-dev.txt: {dep} must come before {name}, which depends on it")
