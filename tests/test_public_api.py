"""The public API: plugins import the core only through ``argus_core`` itself, and a
plugin that registers the wrong kind of thing is told so, by name."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
from argus_testkit.components import core_private_imports

import argus_core
from argus_core import PluginError, Strategy, hookimpl
from argus_core.config import parse_config
from argus_core.plugins import PluginHost
from argus_core.runtime import assemble

ROOT = Path(__file__).resolve().parent.parent
#: The modules of the core a plugin may import are the test kit's ``PUBLIC_CORE_MODULES``
#: (``argus_core``, the pytest kit kept out of the runtime namespace, and the public
#: submodules such as ``argus_core.metrics``); its ``core_private_imports`` finds the rest.
#: Per plugin folder, core internals it still needs until the core makes them public.
#: The test kit is versioned with the core and drives its internals (runner, host, ledger).
ALLOWED_FOR: dict[str, set[str]] = {"argustrade-testkit": {
    "argus_core.config", "argus_core.errors", "argus_core.hookspecs", "argus_core.interfaces",
    "argus_core.models", "argus_core.plugins", "argus_core.runner", "argus_core.ledger",
    "argus_core.runtime", "argus_core.serde", "argus_core.builtins.replay_venue",
    "argus_core.market_state", "argus_core.execution", "argus_core.paper",
    "argus_core.account", "argus_core.builtins.sizers", "argus_core.risk"}}


def test_first_party_plugins_import_only_the_public_api() -> None:
    sources = sorted(ROOT.glob("plugins/*/src/**/*.py"))
    assert len(sources) > 30
    bad = [found for p in sources for found in core_private_imports(p)
           if found.rpartition(": ")[2]
           not in ALLOWED_FOR.get(p.relative_to(ROOT).parts[1], set())]
    assert not bad, "import these names from argus_core instead:\n" + "\n".join(bad)


def test_every_public_name_resolves_and_is_documented() -> None:
    for name in argus_core.__all__:
        obj = getattr(argus_core, name)
        if isinstance(obj, type):
            assert obj.__doc__, f"argus_core.{name} has no docstring"


class NotAStrategy:
    """Duck-typed, but not a Strategy."""

    def on_event(self, event: object, ctx: object) -> list[object]:
        return []


def _plugin(register_strategies: object) -> types.ModuleType:
    module = types.ModuleType("argus_test_wrong_kind")
    module.register_strategies = hookimpl(register_strategies)  # type: ignore[attr-defined]
    return module


def test_a_class_of_the_wrong_kind_is_refused_at_registration_naming_the_plugin() -> None:
    host = PluginHost()
    host.load([], builtins=False)
    with pytest.raises(PluginError, match=r"'wrongkind'.*NotAStrategy.*not a Strategy"):
        host.add_plugin(_plugin(lambda register: register("bad", NotAStrategy)), "wrongkind")
    assert not host.pm.has_plugin("wrongkind")


def test_a_factory_that_builds_the_wrong_kind_is_refused_when_built(tmp_path: Path,
                                                                   monkeypatch) -> None:
    from argus_core import plugins

    module = _plugin(lambda register: register("bad", lambda settings: NotAStrategy()))
    monkeypatch.setitem(sys.modules, "argus_test_wrong_kind", module)
    monkeypatch.setattr(plugins, "BUILTINS", (*plugins.BUILTINS,
                                              ("wrongkind", "argus_test_wrong_kind")))
    config = parse_config({"argus": {"plugins": []},
                           "run": {"venue": "replay", "strategies": ["bad"]},
                           "plugins": {"replay": {"bars_csv": str(
                               ROOT / "examples" / "data" / "kraken_XBTUSD_60.csv")}}},
                          tmp_path / "c.toml")
    with pytest.raises(PluginError, match=r"'wrongkind'.*built a NotAStrategy.*not a Strategy"):
        assemble(config, tmp_path / "run")
    assert issubclass(argus_core.Strategy, Strategy)


def test_every_export_is_seen_by_the_type_checker() -> None:
    """``_EXPORTS`` (what ``__getattr__`` imports), ``__all__`` and the ``TYPE_CHECKING``
    imports name the same things: a name missing from the last resolves at run time but
    is ``Any`` to mypy, so a plugin's misuse of it goes unchecked (eleven were)."""
    import ast

    tree = ast.parse(Path(argus_core.__file__).read_text())
    typed = {(node.module, alias.name) for block in tree.body if isinstance(block, ast.If)
             and "TYPE_CHECKING" in ast.unparse(block.test) for node in ast.walk(block)
             if isinstance(node, ast.ImportFrom) for alias in node.names}
    exports = argus_core._EXPORTS
    assert typed == set(map(tuple, map(reversed, exports.items())))
    assert set(argus_core.__all__) == {*exports, "__version__", *argus_core._SUBMODULES}
