"""Every numeric setting has a range: a value just outside each bound is refused (naming the
file, the key, the value and the range) and one just inside is accepted, through the real
TOML loader; ``argus run`` / ``argus backtest`` exit 2 on nonsense."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import attrs
import pytest
from argus_gpu_heston.pricer import HestonSettings
from argus_lab.config import lab_settings
from argus_orchestrator.config import orchestrator_settings
from argus_scanner_negrisk.config import NegRiskSettings
from argus_strategy_vrp.config import VrpSettings
from argus_test_helpers import BUNDLED_BARS, demo_toml
from click.testing import CliRunner

from argus_core.builtins.risk_checks import RiskSettings
from argus_core.builtins.sizers import SizingSettings
from argus_core.cli import cli
from argus_core.config import (
    FRACTION,
    NON_NEGATIVE,
    Config,
    RangeError,
    in_range,
    load_config,
    plugin_settings,
)
from argus_core.errors import ConfigError

#: [plugins.<name>] tables validated by classes outside the builtins' host.
PLUGIN_CLASSES: dict[str, type] = {"risk": RiskSettings, "sizing": SizingSettings,
                                   "vrp": VrpSettings, "negrisk": NegRiskSettings,
                                   "heston": HestonSettings}

# (table, key, bounds) with bounds = ((outside, inside) at the low end, (inside, outside) at
# the high end); None where that side is unbounded.  Optional third item: companion keys
# that keep the table's cross-field rules satisfied at the probed value.
Bound = tuple[Any, Any] | None
CASES: list[tuple[str, str, Bound, Bound, dict[str, Any]]] = [
    # -- core ------------------------------------------------------------------------------
    ("argus", "seed", (-1, 0), None, {}),
    ("run", "starting_cash", (0, 0.01), None, {}),
    ("run", "stale_after_s", (-0.001, 0), None, {}),
    ("run", "scan_every_events", (0, 1), None, {}),
    ("run", "checkpoint_every_events", (0, 1), None, {}),
    ("run", "unwind_slippage_bps", (-0.01, 0), (5000, 5000.01), {}),
    ("paper", "latency_ms", (-1, 0), None, {}),
    ("paper", "slippage_bps", (-0.01, 0), (10_000, 10_000.01), {}),
    ("paper", "bar_spread_bps", (-0.01, 0), (9999.99, 10_000), {}),
    ("paper", "bar_depth_fraction", (0, 1e-6), (1, 1.000001), {}),
    ("paper", "maker_bps", (-0.01, 0), (10_000, 10_000.01), {}),
    ("paper", "taker_bps", (-0.01, 0), (10_000, 10_000.01), {}),
    ("paper", "fixed_fee", (-0.01, 0), None, {}),
    ("paper", "cost_multiplier", (0, 0.01), None, {}),
    # -- builtin risk checks and sizers ------------------------------------------------------
    ("plugins.risk", "max_position_qty", (0, 1e-8), None, {}),
    ("plugins.risk", "max_position_notional", (0, 0.01), None, {}),
    ("plugins.risk", "per_play_fraction", (0, 1e-6), (1, 1.000001), {}),
    ("plugins.risk", "max_gross_exposure_fraction", (0, 0.01), None, {}),
    ("plugins.risk", "daily_loss_fraction", (0, 1e-6), (1, 1.000001), {}),
    ("plugins.risk", "max_drawdown_fraction", (0, 1e-6), (1, 1.000001), {}),
    ("plugins.risk", "max_consecutive_losses", (0, 1), None, {}),
    ("plugins.risk", "max_orders_per_minute", (0, 1), None, {}),
    ("plugins.sizing", "fraction", (0, 1e-6), (1, 1.000001), {}),
    ("plugins.sizing", "kelly_fraction", (0, 1e-6), (1, 1.000001), {}),
    ("plugins.sizing", "target_vol", (0, 1e-6), None, {}),
    ("plugins.sizing", "max_fraction", (0, 1e-6), (1, 1.000001), {}),
    # -- lab ---------------------------------------------------------------------------------
    ("plugins.lab", "periods_per_year", (0, 0.01), None, {}),
    ("plugins.lab.executor", "max_workers", (0, 1), None, {}),
    ("plugins.lab.sweep", "max_points", (0, 1), None, {}),
    ("plugins.lab.walkforward", "train_bars", (1, 2), None, {}),
    ("plugins.lab.walkforward", "test_bars", (0, 1), None, {}),
    ("plugins.lab.walkforward", "n_folds", (1, 2), None, {}),
    ("plugins.lab.walkforward", "label_horizon", (-1, 0), None, {}),
    ("plugins.lab.walkforward", "embargo", (-1, 0), None, {}),
    ("plugins.lab.walkforward", "min_positive_share", (-0.01, 0), (1, 1.01), {}),
    ("plugins.lab.walkforward", "min_oos_sharpe", None, None, {}),  # any finite number
    ("plugins.lab.bootstrap", "n_paths", (0, 1), None, {}),
    ("plugins.lab.bootstrap", "n_trades", (0, 1), None, {}),
    ("plugins.lab.bootstrap", "mean_block", (0.99, 1), None, {}),
    ("plugins.lab.bootstrap", "ruin_fraction", (0, 0.01), (1, 1.01), {}),
    ("plugins.lab.bootstrap", "seed", (-1, 0), None, {}),
    ("plugins.lab.bootstrap", "batches", (0, 1), None, {}),
    ("plugins.lab.bootstrap", "min_survival", (-0.01, 0), (1, 1.01), {}),
    ("plugins.lab.bootstrap", "max_ruin", (-0.01, 0), (1, 1.01), {}),
    ("plugins.lab.gates", "dsr_deploy", (-0.01, 0), (1, 1.01), {"dsr_kill": 0}),
    ("plugins.lab.gates", "dsr_kill", (-0.01, 0), (1, 1.01), {"dsr_deploy": 1}),
    ("plugins.lab.gates", "rc_alpha", (0, 0.01), (1, 1.01), {}),
    ("plugins.lab.gates", "rc_reps", (0, 1), None, {}),
    ("plugins.lab.gates", "rc_block", (0, 1), None, {}),
    ("plugins.lab.gates", "regime_min_bars", (1, 2), None, {}),
    ("plugins.lab.gates", "max_regime_drawdown", (0, 0.01), (1, 1.01), {}),
    ("plugins.lab.gates", "min_trades", (-1, 0), None, {}),
    ("plugins.lab.gates", "max_pbo", (-0.01, 0), (1, 1.01), {}),
    ("plugins.lab.gates", "pbo_blocks", (0, 2), (24, 26), {}),
    ("plugins.lab.gates", "min_sharpe_at_max_cost", None, None, {}),  # any finite number
    ("plugins.lab.gates", "min_regime_sharpe", None, None, {}),  # finite, or -inf: no floor
    # -- orchestrator ------------------------------------------------------------------------
    ("plugins.orchestrator", "max_tokens_generate", (0, 1), None, {}),
    ("plugins.orchestrator", "max_tokens_review", (0, 1), None, {}),
    ("plugins.orchestrator", "max_retries", (-1, 0), None, {}),
    ("plugins.orchestrator", "timeout_s", (0, 0.01), (600, 600.01), {}),
    ("plugins.orchestrator", "first_cycle_after_events", (-1, 0), None, {}),
    ("plugins.orchestrator", "cycle_every_events", (0, 1), None, {}),
    ("plugins.orchestrator", "poll_every_events", (0, 1), (10_000, 10_001), {}),
    ("plugins.orchestrator", "min_trades", (-1, 0), None, {}),
    ("plugins.orchestrator", "max_trades", (0, 1), None, {"min_trades": 0}),
    # its low end inside is the default max_tokens_generate (8000): a call must fit a cycle
    ("plugins.orchestrator.budget", "cycle_max_tokens", (0, 8000), None, {}),
    # the low ends inside: one default call's output (8000 tokens at $20 per million)
    ("plugins.orchestrator.budget", "cycle_max_cost_usd", (0, 0.16), None, {}),
    ("plugins.orchestrator.budget", "day_max_tokens", (0, 8000), None, {}),  # a call must fit
    ("plugins.orchestrator.budget", "day_max_cost_usd", (0, 0.16), None, {}),
    ("plugins.orchestrator.ladder", "shadow_events", (0, 1), None, {}),
    ("plugins.orchestrator.ladder", "canary_events", (0, 1), None, {}),
    ("plugins.orchestrator.ladder", "canary_notional", (0, 0.01), None, {}),
    ("plugins.orchestrator.ladder", "canary_min_fills", (-1, 0), (1_000_000, 1_000_001), {}),
    ("plugins.orchestrator.ladder", "shadow_fee_bps", (-0.01, 0), (10_000, 10_000.01), {}),
    ("plugins.orchestrator.ladder", "shadow_tolerance", (-0.01, 0), None, {}),
    ("plugins.orchestrator.ladder", "rollback_drawdown_fraction", (0, 0.01), (1, 1.01), {}),
    ("plugins.orchestrator.ladder", "rollback_consecutive_losses", (0, 1), None, {}),
    ("plugins.orchestrator.sandbox", "call_timeout_s", (0, 0.01), (60, 60.01), {}),
    ("plugins.orchestrator.sandbox", "memory_mb", (0, 1), None, {}),
    ("plugins.orchestrator.sandbox", "cpu_seconds", (0, 1), (1_000_000, 1_000_001), {}),
    ("plugins.orchestrator.sandbox", "max_intents", (0, 1), None, {}),
    # -- VRP ---------------------------------------------------------------------------------
    ("plugins.vrp", "strike_step", (0, 0.01), None, {}),
    ("plugins.vrp", "max_dte", (0, 1), None, {"min_dte": 1, "target_dte": 1, "exit_dte": 0}),
    ("plugins.vrp", "strike_band", (0, 0.01), (0.99, 1), {}),
    ("plugins.vrp", "rate", (-0.21, -0.2), (1, 1.01), {}),
    ("plugins.vrp", "qqq_iv_ratio", (0, 0.01), None, {}),
    ("plugins.vrp", "spread_scale", (0, 0.01), (100, 100.01), {}),
    ("plugins.vrp", "book_levels", (0, 1), None, {}),
    ("plugins.vrp", "level_size", (0, 1), None, {}),
    ("plugins.vrp", "commission_per_contract", (-0.01, 0), None, {}),
    ("plugins.vrp", "commission_per_fill", (-0.01, 0), None, {}),
    ("plugins.vrp", "min_vrp", (-1.01, -1), (1, 1.01), {}),
    ("plugins.vrp", "max_p_change", (-0.01, 0), (1, 1.01), {}),
    ("plugins.vrp", "short_delta", (0, 0.01), (0.99, 1), {}),
    ("plugins.vrp", "target_pop", (0, 0.01), (0.99, 1), {}),
    ("plugins.vrp", "width", (0, 0.01), None, {}),
    ("plugins.vrp", "target_dte", (0, 1), None, {"min_dte": 1, "exit_dte": 0}),
    ("plugins.vrp", "min_dte", (0, 1), None, {"exit_dte": 0}),
    ("plugins.vrp", "risk_budget", (0, 1e-6), (1, 1.01), {}),
    ("plugins.vrp", "max_risk_per_play", (0, 0.01), None, {}),
    ("plugins.vrp", "max_contracts", (0, 1), None, {}),
    ("plugins.vrp", "profit_target", (0, 0.01), (1, 1.01), {}),
    ("plugins.vrp", "stop_multiple", (1, 1.01), None, {}),
    ("plugins.vrp", "exit_dte", (-1, 0), None, {}),
    ("plugins.vrp", "max_rel_spread", (0, 0.01), None, {}),
    ("plugins.vrp", "min_credit", (-0.01, 0), None, {}),
    ("plugins.vrp", "limit_ticks", (-1, 0), None, {}),
    ("plugins.vrp", "guard_max_p_change", (-0.01, 0), (1, 1.01), {}),
    ("plugins.vrp", "heston_kappa", (0, 0.01), None, {}),
    ("plugins.vrp", "heston_sigma", (0, 0.01), None, {}),
    ("plugins.vrp", "heston_rho", (-1, -0.99), (0.99, 1), {}),
    ("plugins.vrp", "heston_paths", (1, 2), None, {}),
    # -- negRisk -----------------------------------------------------------------------------
    ("plugins.negrisk", "min_edge", (-0.01, 0), None, {}),
    ("plugins.negrisk", "gas_usd_per_leg", (-0.01, 0), None, {}),
    ("plugins.negrisk", "max_outcomes", (1, 2), None, {}),
    ("plugins.negrisk", "tail_probability_cap", (-0.01, 0), (1, 1.01), {}),
    ("plugins.negrisk", "max_levels", (0, 1), None, {}),
    ("plugins.negrisk", "max_basket_size", (0, 0.01), None, {}),
    # -- Heston ------------------------------------------------------------------------------
    ("plugins.heston", "paths", (1, 2), None, {}),
    ("plugins.heston", "steps", (0, 1), None, {}),
    ("plugins.heston", "steps_per_year", (0, 1), None, {}),
    ("plugins.heston", "min_steps", (0, 1), None, {}),
    ("plugins.heston", "seed", (-1, 0), None, {}),
]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


def write(tmp_path: Path, table: str, settings: dict[str, Any]) -> Path:
    """A config whose ``[table]`` holds ``settings`` (hermetic: builtins only)."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in settings.items()]
    head = "" if table == "argus" else "[argus]\nplugins = []\n"
    run = "" if table == "run" else '[run]\nstrategies = ["ma_cross"]\n'
    path = tmp_path / "c.toml"
    path.write_text(f"{head}{run}[{table}]\n" + "\n".join(lines) + "\n")
    return path


def validate(path: Path, table: str) -> Any:
    """Load ``path`` and validate ``table`` the way the code that reads it does."""
    config: Config = load_config(path)
    if table.startswith("plugins.lab"):
        return lab_settings(config)
    if table.startswith("plugins.orchestrator"):
        return orchestrator_settings(config)
    if table.startswith("plugins."):
        name = table.split(".")[1]
        return plugin_settings(config, name, PLUGIN_CLASSES[name])
    return config


def _probes() -> list[Any]:
    out = []
    for table, key, low, high, extra in CASES:
        for side, pair in (("low", low), ("high", high)):
            if pair is None:
                continue
            outside, inside = pair if side == "low" else pair[::-1]
            tag = f"{table}.{key}-{side}"
            out.append(pytest.param(table, key, outside, False, extra, id=f"{tag}-outside"))
            out.append(pytest.param(table, key, inside, True, extra, id=f"{tag}-inside"))
    return out


@pytest.mark.parametrize(("table", "key", "value", "accepted", "extra"), _probes())
def test_each_bound_just_inside_and_just_outside(tmp_path: Path, table: str, key: str,
                                                  value: Any, accepted: bool,
                                                  extra: dict[str, Any]) -> None:
    path = write(tmp_path, table, {**extra, key: value})
    if accepted:
        validate(path, table)
        return
    with pytest.raises(ConfigError) as info:
        validate(path, table)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert f"{key} = " in message and "outside the allowed range" in message, message
    if table == "plugins.lab.executor":  # the lab's own check, after the core's structure()
        assert message.endswith(f"@ {table}"), message
        return
    # where: the key, and its own line in the file (a plugin table's validator errors were
    # placed at the table's header line); the core's own tables name the table's line
    found = re.search(rf"@ {re.escape(table)}(\.{re.escape(key)})? \(line (\d+)\)$", message)
    assert found, message
    line = path.read_text().splitlines()[int(found.group(2)) - 1]
    if found.group(1):
        assert line.startswith(f"{key} ="), line
    else:
        assert line.strip() == f"[{table}]", line


@pytest.mark.parametrize(("table", "key"), [(t, k) for t, k, *_ in CASES
                                            if not k.endswith("seed")])
def test_nan_and_infinity_are_refused(tmp_path: Path, table: str, key: str) -> None:
    extra = next(e for t, k, _, _, e in CASES if (t, k) == (table, key))
    for value in (math.nan, math.inf):
        # Decimal and int fields refuse them while converting, floats in the range check.
        with pytest.raises(ConfigError, match=rf"{key}\b"):
            validate(write(tmp_path, table, {**extra, key: value}), table)


def test_every_numeric_setting_is_probed() -> None:
    """A numeric field added to one of these classes without a range (or a probe here)
    fails this test."""
    import attrs
    from argus_lab import config as lab
    from argus_orchestrator import config as orch

    from argus_core import config as core

    classes = {"argus": core.ArgusSection, "run": core.RunSection, "paper": core.PaperSection,
               "plugins.lab": lab.LabSettings, "plugins.lab.sweep": lab.SweepSettings,
               "plugins.lab.walkforward": lab.WalkForwardSettings,
               "plugins.lab.bootstrap": lab.BootstrapSettings,
               "plugins.lab.gates": lab.GateSettings,
               "plugins.orchestrator": orch.OrchestratorSettings,
               "plugins.orchestrator.budget": orch.BudgetSettings,
               "plugins.orchestrator.ladder": orch.LadderSettings,
               "plugins.orchestrator.sandbox": orch.SandboxSettings,
               **{f"plugins.{n}": c for n, c in PLUGIN_CLASSES.items()}}
    probed = {(t, k) for t, k, *_ in CASES}
    missing = []
    for table, cls in classes.items():
        for field in attrs.fields(attrs.resolve_types(cls)):
            numeric = any(t in str(field.type) for t in ("int", "float", "Decimal"))
            if numeric and "list" not in str(field.type) and "dict" not in str(field.type):
                if (table, field.name) not in probed:
                    missing.append(f"{table}.{field.name}")
                assert field.validator is not None, f"{table}.{field.name} has no range"
    assert not missing, missing


def test_the_issues_examples_are_refused_with_file_key_value_and_range(tmp_path: Path) -> None:
    cases = [("run", {"starting_cash": -100}, "starting_cash = -100 is outside the allowed "
                                              "range (0, inf) @ run"),
             ("paper", {"taker_bps": -50}, "taker_bps = -50 is outside the allowed range "
                                           "[0, 10000] or unset @ paper"),
             ("paper", {"slippage_bps": -1}, "slippage_bps = -1 is outside"),
             ("plugins.risk", {"max_drawdown_fraction": 7},
              "max_drawdown_fraction = 7 is outside the allowed range (0, 1] @ plugins.risk"),
             ("plugins.risk", {"per_play_fraction": -1}, "per_play_fraction = -1 is outside"),
             ("run", {"stale_after_s": -1}, "stale_after_s = -1.0 is outside the allowed "
                                            "range [0, inf) or unset @ run"),
             ("run", {"checkpoint_every_events": 0},
              "checkpoint_every_events = 0 is outside the allowed range [1, inf) @ run")]
    for table, settings, expected in cases:
        path = write(tmp_path, table, settings)
        with pytest.raises(ConfigError) as info:
            validate(path, table)
        assert str(info.value).startswith(f"{path}: {expected}"), str(info.value)


def test_list_and_cross_field_rules(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cost_multipliers\[1\] = 0 is outside .*"
                                          r"@ plugins.lab.gates"):
        validate(write(tmp_path, "plugins.lab.gates", {"cost_multipliers": [1, 0]}),
                 "plugins.lab.gates")
    with pytest.raises(ConfigError, match=r"cost_multipliers = \[\] .*non-empty"):
        validate(write(tmp_path, "plugins.lab.gates", {"cost_multipliers": []}),
                 "plugins.lab.gates")
    with pytest.raises(ConfigError, match=r"dsr_kill \(0.9\) must not exceed dsr_deploy"):
        validate(write(tmp_path, "plugins.lab.gates", {"dsr_kill": 0.9, "dsr_deploy": 0.8}),
                 "plugins.lab.gates")
    with pytest.raises(ConfigError, match=r"min_trades \(5\) must not exceed max_trades"):
        validate(write(tmp_path, "plugins.orchestrator", {"min_trades": 5, "max_trades": 4}),
                 "plugins.orchestrator")
    path = tmp_path / "p.toml"
    path.write_text('[argus]\nplugins = []\n[run]\nstrategies = ["ma_cross"]\n'
                    '[plugins.orchestrator.prices]\n"claude-x" = ["1", "-2"]\n')
    with pytest.raises(ConfigError, match=r"prices.claude-x = \[1, -2\] is outside"):
        orchestrator_settings(load_config(path))


def test_a_table_that_moved_into_plugins_is_named_with_its_new_place(tmp_path: Path) -> None:
    for table in ("lab", "lab.gates", "orchestrator"):
        path = tmp_path / "old.toml"
        path.write_text(f"[{table}]\n")
        name = table.split(".")[0]
        with pytest.raises(ConfigError, match=rf"\[{name}\] is now \[plugins\.{name}\]"):
            load_config(path)


def test_minus_infinity_only_where_it_means_no_floor(tmp_path: Path) -> None:
    path = write(tmp_path, "plugins.lab.gates", {"min_regime_sharpe": -math.inf})
    assert validate(path, "plugins.lab.gates").gates.min_regime_sharpe == -math.inf
    with pytest.raises(ConfigError, match=r"min_oos_sharpe = -inf is outside"):
        validate(write(tmp_path, "plugins.lab.walkforward", {"min_oos_sharpe": -math.inf}),
                 "plugins.lab")


def test_stale_after_s_is_unset_by_default_and_zero_only_when_given(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "run", {})).run.stale_after_s is None
    assert load_config(write(tmp_path, "run", {"stale_after_s": 0})).run.stale_after_s == 0.0
    assert load_config(write(tmp_path, "run", {})).run.unwind_slippage_bps == 500


def test_range_validator_in_code() -> None:
    """Settings built in code are checked too (a RangeError is a ConfigError)."""
    with pytest.raises(RangeError, match=r"per_play_fraction = 7 .*\(0, 1\]"):
        RiskSettings(per_play_fraction=7)  # type: ignore[arg-type]
    assert str(FRACTION) == "(0, 1]" and str(NON_NEGATIVE) == "[0, inf)"
    assert str(in_range(-math.inf)) == "[-inf, inf)"
    assert in_range(-math.inf).contains(-math.inf) and not NON_NEGATIVE.contains(math.inf)


# -- the CLI ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("command", "extra", "where"), [
    ("run", "[paper]\ntaker_bps = \"-50\"\n", "taker_bps = -50"),
    ("backtest", "[run]\nstarting_cash = \"-1\"\n", "starting_cash = -1"),
    ("run", "", "max_drawdown_fraction = 7"),  # [plugins.risk], validated by the risk plugin
    ("backtest", "", "max_drawdown_fraction = 7"),
])
def test_cli_exits_2_and_names_the_key(tmp_path: Path, command: str, extra: str,
                                       where: str) -> None:
    text = demo_toml(BUNDLED_BARS, start="2022-06-01", end="2022-06-03")
    if extra:  # the table's header line, then the bad key: into the demo's own table
        text = text.replace(extra.split("\n", 1)[0] + "\n", extra)
    else:
        text = text.replace('max_drawdown_fraction = "0.9"', "max_drawdown_fraction = 7")
    config = tmp_path / "bad.toml"
    config.write_text(text)
    result = CliRunner().invoke(cli, [command, "--config", str(config), "--run-dir",
                                      str(tmp_path / "run"), "--no-progress"])
    assert result.exit_code == 2, result.output
    assert where in result.output and "outside the allowed range" in result.output
    assert "bad.toml" in result.output
    assert not (tmp_path / "run" / "argus.db").exists()  # refused before anything ran


def test_orchestrate_refuses_a_negative_cycle_count(tmp_path: Path) -> None:
    from argus_orchestrator.commands import orchestrate_cmd

    result = CliRunner().invoke(orchestrate_cmd, ["--config", str(tmp_path / "c.toml"),
                                                  "--cycles", "-1"])
    assert result.exit_code == 2 and "--cycles" in result.output


def test_whole_numbers_are_not_truncated(tmp_path: Path) -> None:
    """A fraction or a bool in a count is refused (it was truncated: 2.5 -> 2, true -> 1);
    an integral float and text (overrides) still pass."""
    with pytest.raises(ConfigError, match=r"expected a whole number, got 2.5 @ paper.latency_ms"):
        load_config(write(tmp_path, "paper", {"latency_ms": 2.5}))
    with pytest.raises(ConfigError, match=r"got True @ plugins.risk.max_orders_per_minute"):
        validate(write(tmp_path, "plugins.risk", {"max_orders_per_minute": True}),
                 "plugins.risk")
    run = load_config(write(tmp_path, "run", {"scan_every_events": 3.0,
                                              "checkpoint_every_events": "10"})).run
    assert (run.scan_every_events, run.checkpoint_every_events) == (3, 10)


def test_true_and_false_stay_booleans(tmp_path: Path) -> None:
    """bool is an int to Python: the whole-number rule must not catch it, and the text
    "false" (an override) is false, not bool("false")."""
    gates = validate(write(tmp_path, "plugins.lab", {"backtest_gates": True}), "plugins.lab")
    assert gates.backtest_gates is True
    assert validate(write(tmp_path, "plugins.lab", {"backtest_gates": "false"}), "plugins.lab"
                    ).backtest_gates is False
    with pytest.raises(ConfigError,
                       match=r"expected true or false, got 1 @ plugins.lab.backtest_gates"):
        validate(write(tmp_path, "plugins.lab", {"backtest_gates": 1}), "plugins.lab")


@pytest.mark.parametrize("path", sorted(BUNDLED_BARS.parents[1].glob("**/*.toml")),
                         ids=lambda p: p.name)
def test_the_bundled_examples_are_in_range(path: Path) -> None:
    from argus_core.runtime import load_host, validate_settings

    config = load_config(path)
    validate_settings(config, load_host(config))
    if "lab" in config.plugins:
        lab_settings(config)
    if "orchestrator" in config.plugins:
        orchestrator_settings(config)


def test_a_plugin_tables_range_error_and_unknown_key_name_the_keys_own_line(
        tmp_path: Path) -> None:
    """A validator's range error and an unknown key in a plugin table were placed at the
    table's header line (``@ plugins.risk (line 7)`` for a key on line 10): the error says
    where, so it names the key and the key's line."""
    from argus_core.builtins.example_strategies import ExampleSettings

    path = tmp_path / "c.toml"
    path.write_text('[argus]\nplugins = []\n\n[run]\nvenue = "replay"\n\n[plugins.risk]\n'
                    'daily_loss_fraction = "0.1"\n\nmax_drawdown_fraction = 7\n\n'
                    '[plugins.example]\nfast = 3\n\nfsat = 4\n', encoding="utf-8")
    config = load_config(path)
    with pytest.raises(ConfigError) as risk:
        plugin_settings(config, "risk", PLUGIN_CLASSES["risk"])
    assert str(risk.value).endswith(
        "@ plugins.risk.max_drawdown_fraction (line 10)"), str(risk.value)
    with pytest.raises(ConfigError) as example:
        plugin_settings(config, "example", ExampleSettings)
    assert str(example.value).endswith("unknown key(s) (fsat) @ plugins.example (line 15)"), \
        str(example.value)


@attrs.frozen
class _NamedSettings:
    """A plugin's settings whose own validator names its key (as plugins write them)."""

    segments: list[str] = attrs.field(factory=lambda: ["eu"])

    @segments.validator
    def _known(self, attribute: attrs.Attribute, value: list[str]) -> None:
        if set(value) - {"eu", "us"}:
            raise ValueError(f"segments: unknown {sorted(set(value) - {'eu', 'us'})}")


def test_a_plugins_own_validator_error_names_its_keys_line(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[argus]\nplugins = []\n\n[plugins.named]\n\n# mine\nsegments = ["asia"]\n',
                    encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        plugin_settings(load_config(path), "named", _NamedSettings)
    assert str(info.value).endswith("@ plugins.named.segments (line 7)"), str(info.value)
