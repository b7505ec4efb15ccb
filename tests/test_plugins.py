"""Plugin loading: builtins, entry points, clear errors, live add/remove, third-party dists."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import pytest

from argus_core.errors import PluginError
from argus_core.hookspecs import hookimpl
from argus_core.interfaces import Strategy
from argus_core.plugins import PluginHost


class Noop(Strategy):
    """A strategy that never trades."""

    name = "noop"

    def on_event(self, event, ctx):  # type: ignore[no-untyped-def]
        return []


def _plugin(name: str, strategy_name: str = "noop") -> types.SimpleNamespace:
    @hookimpl
    def register_strategies(register):  # type: ignore[no-untyped-def]
        register(strategy_name, Noop)

    return types.SimpleNamespace(register_strategies=register_strategies, __name__=name)


def test_builtins_register_through_the_hooks(argus_host: PluginHost) -> None:
    assert {"replay", "risk", "sizing", "example"} <= set(argus_host.plugin_names())
    assert "ma_cross" in argus_host.registry["strategy"]
    assert "per_play_cap" in argus_host.registry["risk_check"]
    assert argus_host.get("sizer", "kelly").plugin == "sizing"


def test_one_plugin_registering_a_name_twice_is_told_so(argus_host: PluginHost,
                                                         register_plugin) -> None:  # type: ignore[no-untyped-def]
    """Was: "registered by both 'twice' and 'twice'; ... set ARGUS_BLOCK_PLUGINS=twice",
    advice for two plugins given to one."""
    @hookimpl
    def register_strategies(register):  # type: ignore[no-untyped-def]
        register("s1", Noop)
        register("s1", Noop)

    plugin = types.SimpleNamespace(register_strategies=register_strategies, __name__="twice")
    with pytest.raises(PluginError, match=r"plugin 'twice' registers strategy 's1' twice"):
        register_plugin(plugin, "twice")


def test_live_register_and_unregister(argus_host: PluginHost, register_plugin) -> None:  # type: ignore[no-untyped-def]
    register_plugin(_plugin("extra"), "extra")
    assert argus_host.get("strategy", "noop").plugin == "extra"
    argus_host.remove_plugin("extra")
    with pytest.raises(PluginError, match="no strategy named 'noop'"):
        argus_host.get("strategy", "noop")


def test_duplicate_names_clash_with_both_plugins_named(argus_host: PluginHost,
                                                       register_plugin) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PluginError, match=r"'ma_cross' is registered by both 'example' and "
                                          r"'copycat'.*ARGUS_BLOCK_PLUGINS"):
        register_plugin(_plugin("copycat", "ma_cross"), "copycat")
    assert not argus_host.pm.has_plugin("copycat")  # rolled back
    assert argus_host.get("strategy", "ma_cross").plugin == "example"


def test_raising_hook_names_plugin_and_hook(argus_host: PluginHost) -> None:
    @hookimpl
    def register_venues(register):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    with pytest.raises(PluginError, match=r"plugin 'broken' failed in hook register_venues: "
                                          r"RuntimeError: boom"):
        argus_host.add_plugin(types.SimpleNamespace(register_venues=register_venues), "broken")


def test_unknown_hook_is_rejected(argus_host: PluginHost) -> None:
    @hookimpl
    def register_venuez(register):  # type: ignore[no-untyped-def]
        pass

    with pytest.raises(PluginError, match="unknown hook"):
        argus_host.add_plugin(types.SimpleNamespace(register_venuez=register_venuez), "typo")


def test_missing_plugin_names_the_remedy() -> None:
    host = PluginHost()
    with pytest.raises(PluginError, match=r"'definitely-absent' is not installed.*"
                                          r"entry-points\.argus"):
        host.load(["definitely-absent"])


def test_block_env_var_blocks_builtins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARGUS_BLOCK_PLUGINS", "example, sizing")
    host = PluginHost()
    host.load([])
    assert "example" not in host.plugin_names() and "sizing" not in host.plugin_names()
    assert "ma_cross" not in host.registry["strategy"]


def test_broken_import_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from argus_core import plugins

    monkeypatch.setattr(plugins, "BUILTINS", (("ghost", "argus_core.no_such_module"),))
    with pytest.raises(PluginError, match=r"plugin 'ghost' failed to import.*"
                                          r"ModuleNotFoundError.*ARGUS_BLOCK_PLUGINS=ghost"):
        PluginHost().load([])


THIRD_PARTY = {
    "pyproject.toml": """
        [build-system]
        requires = ["hatchling"]
        build-backend = "hatchling.build"
        [project]
        name = "argus-thirdparty-probe"
        version = "9.9.1"
        dependencies = []
        [project.entry-points.argus]
        probe = "argus_thirdparty_probe.plugin"
        [tool.hatch.build.targets.wheel]
        packages = ["argus_thirdparty_probe"]
    """,
    "argus_thirdparty_probe/__init__.py": "",
    "argus_thirdparty_probe/plugin.py": """
        import attrs
        from argus_core.hookspecs import hookimpl
        from argus_core.interfaces import Strategy

        @attrs.frozen
        class Settings:
            level: int = 1

        class Probe(Strategy):
            name = "probe_strategy"
            def __init__(self, settings):
                self.settings = settings
            def on_event(self, event, ctx):
                return []

        @hookimpl
        def config_class():
            return Settings

        @hookimpl
        def register_strategies(register):
            register("probe_strategy", Probe)
    """,
}


def test_a_third_party_distribution_loads_through_its_entry_point(tmp_path: Path) -> None:
    src = tmp_path / "outside-the-repo"
    for rel, text in THIRD_PARTY.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(textwrap.dedent(text))
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(src)], check=True)
    env_path = f"{target}"
    code = ("import json; from argus_core.plugins import PluginHost; h = PluginHost(); "
            "h.load(['probe']); print(json.dumps([[i.name, i.distribution, i.version, "
            "i.registered] for i in h.info()]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"}, check=True)
    rows = {r[0]: r for r in json.loads(proc.stdout)}
    assert rows["probe"][1:] == ["argus-thirdparty-probe", "9.9.1",
                                 {"strategy": ["probe_strategy"]}]
    cfg = tmp_path / "probe.toml"
    cfg.write_text('[argus]\nplugins = ["probe"]\n')
    cli = subprocess.run([sys.executable, "-c", "from argus_core.cli import main; main()",
                          "plugins", "--json", "--config", str(cfg)], capture_output=True,
                         text=True,
                         env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin",
                              "ARGUS_BLOCK_PLUGINS": ""}, check=True)
    listed = {p["name"]: p for p in json.loads(cli.stdout)}
    assert listed["probe"]["hooks"] == ["config_class", "register_strategies"]


def test_argus_plugins_lists_the_rest_when_one_plugin_is_broken(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata as md
    import json

    from click.testing import CliRunner

    from argus_core import plugins
    from argus_core.cli import cli

    real = md.entry_points
    ghost = md.EntryPoint("ghost", "argus_core.no_such_module", plugins.ENTRY_POINT_GROUP)

    def with_ghost(**kw):  # type: ignore[no-untyped-def]
        eps = list(real(**kw))
        return [*eps, ghost] if kw.get("group") == plugins.ENTRY_POINT_GROUP else eps

    monkeypatch.setattr(plugins.md, "entry_points", with_ghost)
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 3
    assert result.stderr.startswith("error: plugin(s) failed to load: ghost")  # stdout: JSON only
    listed = {row["name"]: row for row in json.loads(result.stdout)}
    assert "ModuleNotFoundError" in listed["ghost"]["error"]
    assert listed["replay"]["error"] is None and "venue" in listed["replay"]["registered"]


def test_a_plugin_name_two_distributions_claim_is_refused_naming_both(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second distribution whose entry point is named ``kraken`` (a plugin author's
    pick) shadowed the Kraken venue without a word: only one of the two loaded, and the
    run failed far away ("unknown key(s) (threshold) @ plugins.kraken")."""
    from importlib import metadata

    from argus_core.plugins import PluginHost

    if "kraken" not in {ep.name for ep in metadata.entry_points(group="argus")}:
        pytest.skip("argus-venue-kraken is not installed")
    info = tmp_path / "argus_strategy_mine-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: argus-strategy-mine\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text("[argus]\nkraken = argus_strategy_mine.plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match=r"plugin name 'kraken' is claimed by "
                                          r"'argus-strategy-mine' and 'argus-venue-kraken'"):
        PluginHost().load(["kraken"])
    host = PluginHost()
    host.load(None, tolerant=True)
    assert "argus-strategy-mine" in host.broken["kraken"]
    assert not host.pm.has_plugin("kraken")


def test_one_module_under_two_names_is_refused_naming_both(argus_host: PluginHost) -> None:
    """Was pluggy's bare ``ValueError: Plugin already registered under a different name``
    with a dump of every loaded module (two entry points naming one module)."""
    plugin = _plugin("dual")
    argus_host.add_plugin(plugin, "first")
    try:
        with pytest.raises(PluginError, match=r"plugin 'second' is the module of plugin "
                                              r"'first' again"):
            argus_host.add_plugin(plugin, "second")
    finally:
        argus_host.remove_plugin("first")


def test_an_installed_plugins_hook_without_hookimpl_is_refused_at_load() -> None:
    """pluggy skips a function named like a hook that lacks ``@hookimpl``: an installed
    plugin's venue or strategy was silently missing, and "unknown venue" said later."""
    class Half:
        @hookimpl
        def register_strategies(self, register: Any) -> None:
            pass

        def register_venues(self, register: Any) -> None:  # forgot @hookimpl
            pass

    host = PluginHost()
    host.load([])
    with pytest.raises(PluginError, match=r"plugin 'half'.*register_venues.*no @hookimpl"):
        host.add_plugin(Half(), "half")
    assert not host.pm.has_plugin("half")

    class Renamed:  # specname: a hook under another function name is a hook
        @hookimpl(specname="register_venues")
        def venues(self, register: Any) -> None:
            pass

    assert host.check_hooks(Renamed(), "renamed") == ["register_venues"]
