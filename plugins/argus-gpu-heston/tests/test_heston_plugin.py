"""The plugin's contract with the core: settings, pricer registration, CLI commands."""

from __future__ import annotations

import importlib.metadata as md
import json
import logging
import sys

import click
import pytest
from argus_gpu_heston import HestonParams, HestonPricer, OptionLeg, backends, plugin
from argus_gpu_heston.pricer import HestonSettings
from click.testing import CliRunner

from argus_core.config import structure
from argus_core.errors import ConfigError, PluginError
from argus_core.interfaces import Pricer
from argus_core.plugins import PluginHost

FO_ARGS = ["--s0", "100", "--t", "1", "--v0", "0.0175", "--kappa", "1.5768", "--theta",
           "0.0398", "--sigma", "0.5751", "--rho", "-0.5711"]


def test_settings_validate_and_reject_unknown_keys() -> None:
    cls = plugin.config_class()
    assert cls is HestonSettings
    s = structure({"backend": "cpu", "dtype": "float32", "paths": 5000, "scheme": "euler",
                   "seed": 3}, cls, "argus.toml", prefix="plugins.heston")
    assert s.backend == "cpu" and s.paths == 5000 and s.steps_for(0.1) == 26
    assert structure({}, cls, "argus.toml") == HestonSettings()
    with pytest.raises(ConfigError, match="unknown"):
        structure({"gpu": True}, cls, "argus.toml", prefix="plugins.heston")
    with pytest.raises(ConfigError, match=r"argus\.toml"):
        structure({"backend": "tpu"}, cls, "argus.toml", prefix="plugins.heston")
    with pytest.raises(ConfigError):
        structure({"paths": 1}, cls, "argus.toml", prefix="plugins.heston")
    assert HestonSettings().estimator == "conditional"
    assert structure({"estimator": "plain"}, cls, "argus.toml").estimator == "plain"
    with pytest.raises(ConfigError, match="estimator"):
        structure({"estimator": "willard"}, cls, "argus.toml", prefix="plugins.heston")


def test_pricer_registers_through_the_plugin_host() -> None:
    host = PluginHost()
    host.add_plugin(plugin, "heston")
    try:
        reg = host.get("pricer", "heston")
        for settings in (None, HestonSettings(backend="cpu")):
            pricer = reg.factory(settings)
            assert isinstance(pricer, Pricer) and isinstance(pricer, HestonPricer)
        desc = reg.factory(None).describe()
        assert desc["name"] == "heston" and "cpu" in desc["backends"]
        assert set(desc["methods"]) == {"analytic", "mc"}
        assert "heston" in host.config_classes()
    finally:
        host.remove_plugin("heston")


def test_entry_point_is_declared() -> None:
    eps = {ep.name: ep.value for ep in md.entry_points(group="argus")}
    if "heston" not in eps:
        pytest.skip("argus-gpu-heston is not installed (pip install -e plugins/argus-gpu-heston)")
    assert eps["heston"] == "argus_gpu_heston.plugin"


def test_public_api_shape() -> None:
    # the plugin's own API (its CLI, benchmarks and calibration) keeps these names and fields
    pricer = HestonPricer()
    params = HestonParams(0.04, 2.0, 0.04, 0.5, -0.7)
    res = pricer.price("put", 100.0, 95.0, 0.1, 0.02, 0.0, params, method="mc", scheme="qe",
                       paths=2000, steps=8, backend="cpu", seed=1)
    assert {"price", "stderr", "method", "backend", "paths", "steps", "elapsed_ms"} <= set(
        res.__attrs_attrs__.__dir__()) or hasattr(res, "elapsed_ms")
    pop = pricer.pop([OptionLeg("put", 95.0, -1.0), OptionLeg("put", 90.0, 1.0)], 100.0, 0.1,
                     0.02, 0.0, params, premium=1.0, drift=None, paths=2000, steps=8, seed=1)
    for field in ("p_profit", "expected_pnl", "p_max_loss", "p_touch_short", "pnl_quantiles",
                  "backend", "paths"):
        assert hasattr(pop, field)
    assert isinstance(pop.pnl_quantiles, dict)


def _cli() -> click.Group:
    from argus_gpu_heston.cli import heston

    group = click.Group("argus")
    group.add_command(heston)
    return group


def test_cli_price_analytic_and_mc() -> None:
    runner = CliRunner()
    out = runner.invoke(_cli(), ["heston", "price", *FO_ARGS, "--strike", "100", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["price"] == pytest.approx(5.785155450, rel=1e-8)
    assert data["method"] == "analytic" and data["stderr"] == 0
    out = runner.invoke(_cli(), ["heston", "price", *FO_ARGS, "--strike", "100", "--method",
                                 "mc", "--paths", "20000", "--steps", "16", "--backend", "cpu",
                                 "--seed", "3"])
    assert out.exit_code == 0, out.output
    for word in ("price", "stderr", "mc-qe", "cpu", "20000", "16", "elapsed_ms"):
        assert word in out.output
    # the plain estimator: same seed and paths, a wider standard error
    errs = {}
    for est in ("conditional", "plain"):
        res = runner.invoke(_cli(), ["heston", "price", *FO_ARGS, "--strike", "100", "--method",
                                     "mc", "--paths", "20000", "--steps", "16", "--backend",
                                     "cpu", "--seed", "3", "--estimator", est, "--json"])
        assert res.exit_code == 0, res.output
        errs[est] = json.loads(res.output)["stderr"]
    assert errs["conditional"] < 0.5 * errs["plain"]


def test_cli_pop_and_errors() -> None:
    runner = CliRunner()
    out = runner.invoke(_cli(), ["heston", "pop", *FO_ARGS, "--put-spread", "95:90",
                                 "--premium", "1", "--paths", "20000", "--backend", "cpu",
                                 "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert 0.0 < data["p_profit"] < 1.0 and data["legs"] == ["-1 put 95", "+1 put 90"]
    bad = runner.invoke(_cli(), ["heston", "price", *FO_ARGS[:-2], "--rho", "1.5",
                                 "--strike", "100"])
    assert bad.exit_code == ConfigError.exit_code and "rho" in bad.output
    none = runner.invoke(_cli(), ["heston", "pop", *FO_ARGS, "--premium", "1"])
    assert none.exit_code == ConfigError.exit_code and "leg" in none.output


def test_cli_install_hint_keeps_cuda_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # rich markup would swallow "[cuda]"; the heston group prints Argus errors escaped
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy -> ImportError
    # on a GPU machine an earlier test in this process built the CUDA backend: forget it
    monkeypatch.setattr(backends, "_cache", {})
    out = CliRunner().invoke(_cli(), ["heston", "price", *FO_ARGS, "--strike", "100",
                                      "--method", "mc", "--paths", "1000", "--backend", "cuda"])
    assert out.exit_code == PluginError.exit_code, out.output
    assert "pip install 'argus-gpu-heston[cuda]'" in out.output


def test_cpu_compile_notice_when_cache_is_cold(monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    from argus_gpu_heston.backends import cpu_numba
    from argus_gpu_heston.mc_common import make_spec

    fo = HestonParams(0.0175, 1.5768, 0.0398, 0.5751, -0.5711)
    spec = make_spec(fo, 0.5, 0.0, 64, 2, "qe", "float64", seed=1, antithetic=True)
    monkeypatch.setattr(cpu_numba, "_notice_shown", False)
    monkeypatch.setattr(cpu_numba, "_cache_is_cold", lambda kernel: True)
    with caplog.at_level(logging.WARNING, logger="argus_gpu_heston"):
        cpu_numba.NumbaBackend().price_sums(spec, 100.0, 100.0, 1.0, 0.0, True)
        cpu_numba.NumbaBackend().paths(spec, 100.0)
    notices = [r for r in caplog.records if r.getMessage() == cpu_numba.COMPILE_NOTICE]
    assert len(notices) == 1 and notices[0].levelno == logging.WARNING  # once per process
    caplog.clear()
    monkeypatch.setattr(cpu_numba, "_notice_shown", False)
    monkeypatch.setattr(cpu_numba, "_cache_is_cold", lambda kernel: False)
    with caplog.at_level(logging.WARNING, logger="argus_gpu_heston"):
        cpu_numba.NumbaBackend().price_sums(spec, 100.0, 100.0, 1.0, 0.0, True)
    assert not caplog.records
    monkeypatch.undo()
    # the real check: a kernel already compiled or loaded in this process is warm
    assert not cpu_numba._cache_is_cold(cpu_numba.price_kernel)


def test_cli_calibrate_smoke() -> None:
    out = CliRunner().invoke(_cli(), ["heston", "calibrate", "--max-nfev", "2", "--top", "5"])
    assert out.exit_code == 0, out.output
    assert "RMSE" in out.output and "2011-01-03" in out.output
    assert len([ln for ln in out.output.splitlines() if ln.strip()[:1].isdigit()]) >= 5
