"""Re-run the offline search behind the example's cycle-1 answer; write ``prior_trials.json``.

Before the example's cycle-1 answer (an EMA trend filter with volatility targeting)
was written, a person tried a dozen or so variants of the same family offline:
moving-average crosses (simple and exponential), Donchian breakouts and
time-series momentum, each with a fixed 7% weight or volatility-targeted.  Every
variant ever tried for a strategy family is a trial: a deflated Sharpe ratio that
counts only the two versions the orchestrator saw (seed and answer) ignores the
search that picked the answer, which is exactly the selection bias the lab exists
to catch.  This script re-runs those variants as AI-contract modules, in the
sandbox, through the same backtest the orchestrator's gates use, on the same
proving window (``[plugins.orchestrator.backtest]`` of ``orchestrate.toml``), and writes
each one's per-observation Sharpe ratio, number of observations, skew and
(non-excess) kurtosis, with its source.  ``argus orchestrate`` loads the file
(``[plugins.orchestrator] prior_trials``) into the lab's trial registry for the family
before the first cycle, so the deflated Sharpe counts them.

Every variant tried while writing the example belongs in ``VARIANTS``; add any new
one there and re-run::

    python examples/orchestrator/prior_trials.py            # writes prior_trials.json
    python examples/orchestrator/prior_trials.py --check    # recomputes, compares

The seed (incumbent) and the cycle-1 answer are run too, for the README's table,
marked ``recorded_by: orchestrator``: the orchestrator records those two itself
(under their version ids), so loading them again would count them twice.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
CONFIG = HERE / "orchestrate.toml"
OUT = HERE / "prior_trials.json"

#: The template every offline variant was written from: one AI-contract module whose
#: constants pick the signal and the sizing.  Long-only, like the seed and the answer.
TEMPLATE = '''"""{description}"""

import math

SIGNAL = "{signal}"  # sma | ema | donchian | momentum
FAST = {fast}  # hours (donchian: exit channel; momentum: unused)
SLOW = {slow}  # hours (donchian: entry channel; momentum: look-back)
BAND = {band}  # hysteresis band on the trend test
TARGET_VOL = {target_vol}  # annualised vol target; 0 = a fixed weight
MAX_WEIGHT = 0.07  # at most 7% of equity (the per-play cap)
VOL_HALF_LIFE = 336  # hours, EWMA variance of hourly log returns
REBALANCE = 0.5  # resize only when the target is 50% away from the holding
HOURS_PER_YEAR = 8760
DAY = 24  # donchian and momentum keep daily closes (small state)


class Strategy:
    """Trend on/off from the signal; size = equity x weight (vol-targeted or fixed)."""

    EVENTS = ("bar",)

    def trend(self, close, state):
        """The signal's verdict (True: long), or None while warming up."""
        on = state.get("trend", False)
        if SIGNAL == "ema":
            fast = state.get("fast", close)
            slow = state.get("slow", close)
            fast += 2.0 / (FAST + 1) * (close - fast)
            slow += 2.0 / (SLOW + 1) * (close - slow)
            state["fast"] = fast
            state["slow"] = slow
            if state["n"] < SLOW:
                return None
        elif SIGNAL == "sma":
            closes = state.setdefault("closes", [])
            closes.append(close)
            del closes[:-SLOW]
            if len(closes) < SLOW:
                return None
            fast = sum(closes[-FAST:]) / FAST
            slow = sum(closes) / SLOW
        else:
            days = state.setdefault("days", [])
            if state["n"] % DAY == 0:
                days.append(close)
                del days[:-(SLOW // DAY + 1)]
            if len(days) < SLOW // DAY + 1:
                return None
            if SIGNAL == "momentum":
                fast, slow = close, days[0]
            elif on:  # donchian: stay long until the close breaks the exit channel's low
                return close >= min(days[-(FAST // DAY):])
            else:
                return close > max(days[:-1])
        if not on and fast > slow * (1 + BAND):
            return True
        if on and fast < slow * (1 - BAND):
            return False
        return on

    def on_event(self, event, state, portfolio):
        close = event["close"]
        last = state.get("last")
        state["n"] = state.get("n", 0) + 1
        state["last"] = close
        if last:
            r = math.log(close / last)
            decay = 0.5 ** (1.0 / VOL_HALF_LIFE)
            var = state.get("var")
            state["var"] = r * r if var is None else decay * var + (1 - decay) * r * r
        on = self.trend(close, state)
        if on is None or not state.get("var"):
            return []
        state["trend"] = on
        iid = event["instrument_id"]
        held = portfolio["positions"].get(iid, 0.0)
        vol = math.sqrt(state["var"] * HOURS_PER_YEAR)
        weight = 0.0
        if on:
            weight = MAX_WEIGHT * (min(1.0, TARGET_VOL / vol) if TARGET_VOL else 1.0)
        target = portfolio["equity"] * weight / close
        if target <= 0:
            if held > 0:
                return [{{"instrument_id": iid, "side": "sell", "quantity": held,
                         "reason": "trend off", "reduce_only": True}}]
            return []
        if held <= 0:
            return [{{"instrument_id": iid, "side": "buy", "quantity": target,
                     "reason": "trend on"}}]
        if abs(target - held) > REBALANCE * held:
            side = "buy" if target > held else "sell"
            return [{{"instrument_id": iid, "side": side, "quantity": abs(target - held),
                     "reason": "resize", "reduce_only": side == "sell"}}]
        return []
'''

#: The second template (tried after the first dozen): an ensemble of EMA trend filters at
#: several speeds; the weight is the share of filters that are on.
ENSEMBLE_TEMPLATE = '''"""{description}"""

import math

SPEEDS = {speeds}  # (fast, slow) EMA spans in hours
BAND = {band}  # hysteresis band on each trend filter
TARGET_VOL = {target_vol}  # annualised vol target; 0 = a fixed weight
MAX_WEIGHT = 0.07  # at most 7% of equity (the per-play cap)
VOL_HALF_LIFE = 336  # hours, EWMA variance of hourly log returns
REBALANCE = 0.25  # resize only when the target is 25% away from the holding
HOURS_PER_YEAR = 8760
WARMUP = {warmup}  # bars before the slowest average is trusted


class Strategy:
    """Share of trend filters on x the per-play weight, scaled to the vol target."""

    EVENTS = ("bar",)

    def on_event(self, event, state, portfolio):
        close = event["close"]
        last = state.get("last")
        n = state.get("n", 0) + 1
        state["n"] = n
        state["last"] = close
        if last:
            r = math.log(close / last)
            decay = 0.5 ** (1.0 / VOL_HALF_LIFE)
            var = state.get("var")
            state["var"] = r * r if var is None else decay * var + (1 - decay) * r * r
        emas = state.setdefault("emas", [[close, close] for speed in SPEEDS])
        ons = state.setdefault("on", [False for speed in SPEEDS])
        for i, speed in enumerate(SPEEDS):
            ema = emas[i]
            ema[0] += 2.0 / (speed[0] + 1) * (close - ema[0])
            ema[1] += 2.0 / (speed[1] + 1) * (close - ema[1])
            if not ons[i] and ema[0] > ema[1] * (1 + BAND):
                ons[i] = True
            elif ons[i] and ema[0] < ema[1] * (1 - BAND):
                ons[i] = False
        if n < WARMUP or not state.get("var"):
            return []
        share = sum(1 for on in ons if on) / len(SPEEDS)
        iid = event["instrument_id"]
        held = portfolio["positions"].get(iid, 0.0)
        vol = math.sqrt(state["var"] * HOURS_PER_YEAR)
        scale = min(1.0, TARGET_VOL / vol) if TARGET_VOL else 1.0
        target = portfolio["equity"] * MAX_WEIGHT * scale * share / close
        if target <= 0:
            if held > 0:
                return [{{"instrument_id": iid, "side": "sell", "quantity": held,
                         "reason": "every trend filter off", "reduce_only": True}}]
            return []
        if held <= 0:
            return [{{"instrument_id": iid, "side": "buy", "quantity": target,
                     "reason": f"{{share:.0%}} of trend filters on; vol {{vol:.0%}}"}}]
        if abs(target - held) > REBALANCE * held:
            side = "buy" if target > held else "sell"
            return [{{"instrument_id": iid, "side": side, "quantity": abs(target - held),
                     "reason": f"resize: {{share:.0%}} on, vol {{vol:.0%}}",
                     "reduce_only": side == "sell"}}]
        return []
'''

#: Every variant tried offline while writing the example, in the order they were tried.
VARIANTS: list[dict[str, Any]] = [
    {"id": "sma-24-120", "signal": "sma", "fast": 24, "slow": 120, "band": 0.0,
     "target_vol": 0.0, "description": "SMA cross, 1 day vs 5 days, fixed 7% weight"},
    {"id": "sma-48-240", "signal": "sma", "fast": 48, "slow": 240, "band": 0.0,
     "target_vol": 0.0, "description": "SMA cross, 2 days vs 10 days, fixed 7% weight"},
    {"id": "sma-72-480", "signal": "sma", "fast": 72, "slow": 480, "band": 0.0,
     "target_vol": 0.0, "description": "SMA cross, 3 days vs 20 days, fixed 7% weight"},
    {"id": "ema-24-168", "signal": "ema", "fast": 24, "slow": 168, "band": 0.0,
     "target_vol": 0.0, "description": "EMA cross, 1 day vs 7 days, fixed 7% weight"},
    {"id": "ema-72-480-b1", "signal": "ema", "fast": 72, "slow": 480, "band": 0.01,
     "target_vol": 0.0,
     "description": "EMA trend filter, 3 days vs 20 days, 1% band, fixed 7% weight"},
    {"id": "ema-48-336-b1-vt40", "signal": "ema", "fast": 48, "slow": 336, "band": 0.01,
     "target_vol": 0.40,
     "description": "EMA trend filter, 2 days vs 14 days, 1% band, 40% vol target"},
    {"id": "ema-120-720-b1-vt40", "signal": "ema", "fast": 120, "slow": 720, "band": 0.01,
     "target_vol": 0.40,
     "description": "EMA trend filter, 5 days vs 30 days, 1% band, 40% vol target"},
    {"id": "ema-72-480-b0-vt40", "signal": "ema", "fast": 72, "slow": 480, "band": 0.0,
     "target_vol": 0.40,
     "description": "EMA trend filter, 3 days vs 20 days, no band, 40% vol target"},
    {"id": "donchian-480-240", "signal": "donchian", "fast": 240, "slow": 480, "band": 0.0,
     "target_vol": 0.0,
     "description": "Donchian breakout: 20-day high in, 10-day low out, fixed 7% weight"},
    {"id": "donchian-480-240-vt40", "signal": "donchian", "fast": 240, "slow": 480,
     "band": 0.0, "target_vol": 0.40,
     "description": "Donchian breakout: 20-day high in, 10-day low out, 40% vol target"},
    {"id": "momentum-720", "signal": "momentum", "fast": 0, "slow": 720, "band": 0.0,
     "target_vol": 0.0, "description": "Time-series momentum: 30-day return > 0, fixed 7%"},
    {"id": "momentum-720-vt40", "signal": "momentum", "fast": 0, "slow": 720, "band": 0.0,
     "target_vol": 0.40,
     "description": "Time-series momentum: 30-day return > 0, 40% vol target"},
    # The first cycle-1 answer (best of the above on 2019-2021).  Counting the dozen above
    # as trials, its DSR was 0.887 on 2019-2021 and 0.862 on 2016-2021: a hold.  The search
    # went on from there, with every further variant recorded below.
    {"id": "ema-72-480-b1-vt40", "source_file": "variants/ema_vol_target.py",
     "description": "EMA trend filter, 3 days vs 20 days, 1% band, 40% vol target (the "
                    "first cycle-1 answer)"},
    {"id": "ema-120-720-b1-vt20", "signal": "ema", "fast": 120, "slow": 720, "band": 0.01,
     "target_vol": 0.20,
     "description": "EMA trend filter, 5 days vs 30 days, 1% band, 20% vol target"},
]

#: The cycle-1 answer now recorded in ``answers/cycle1_generate.md`` (its code is this
#: ensemble template rendered with these values; ``tests/orchestrator`` checks they agree).
ANSWER: dict[str, Any] = {
    "id": "ensemble-3-b1-vt40", "signal": "ensemble",
    "speeds": [[24, 168], [72, 480], [168, 1008]], "band": "0.01", "target_vol": "0.40",
    "description": "Three EMA trend filters (1/7, 3/20 and 7/42 days) with a 1% band; the "
                   "weight is the share of\nfilters that are on, scaled to a 40% volatility "
                   "target and capped at 7% of equity."}


def variant_source(variant: dict[str, Any]) -> str:
    """The AI-contract module of one offline variant."""
    if "source_file" in variant:
        return (HERE / variant["source_file"]).read_text()
    if variant["signal"] == "ensemble":
        speeds = tuple(tuple(pair) for pair in variant["speeds"])
        return ENSEMBLE_TEMPLATE.format(description=variant["description"], speeds=speeds,
                                        band=variant["band"], target_vol=variant["target_vol"],
                                        warmup=max(slow for _fast, slow in speeds))
    return TEMPLATE.format(**{k: variant[k] for k in ("description", "signal", "fast", "slow",
                                                      "band", "target_vol")})


def answer_source(name: str) -> str:
    """The code block of a recorded answer (``answers/<name>``)."""
    text = (HERE / "answers" / name).read_text()
    return text.split("```python\n", 1)[1].split("```", 1)[0]


def measure(config: Any, overrides: dict[str, Any], source: str, slot: str,
            policy: Any) -> dict[str, Any]:
    """Backtest ``source`` in the sandbox on the proving window; the trial's figures."""
    from argus_lab.stats import return_moments
    from argus_orchestrator.gates import _sharpe_per_obs
    from argus_orchestrator.sandbox import SandboxedStrategy

    from argus_core.backtest import run_backtest

    strategy = SandboxedStrategy(source, name=slot, policy=policy)
    with tempfile.TemporaryDirectory(prefix="argus-prior-") as tmp:
        try:
            result = run_backtest(config, Path(tmp) / "run", overrides=overrides,
                                  strategies={slot: strategy})
        finally:
            strategy.close()
    if strategy.failure is not None:
        raise SystemExit(f"variant failed in its sandbox: {strategy.failure}")
    moments = return_moments(result.returns)
    return {"sharpe_per_obs": _sharpe_per_obs(result.returns), "n_obs": int(moments.n_obs),
            "skew": moments.skew, "kurtosis": moments.kurtosis,
            "sharpe_annualised": float(result.metrics.get("sharpe", 0.0)),
            "total_return": float(result.metrics["total_return"]),
            "max_drawdown": float(result.metrics["max_drawdown"]),
            "n_trades": int(result.metrics.get("n_trades", 0)),
            "trading_state": result.summary.trading_state}


def compute(only: set[str] | None = None, echo: Any = print) -> dict[str, Any]:
    """Run every variant (or those in ``only``) and return the file's content."""
    from argus_orchestrator.config import orchestrator_settings

    from argus_core.config import load_config

    config = load_config(CONFIG)
    settings = orchestrator_settings(config)
    policy = settings.sandbox.policy()
    rows = []
    runs = [(v["id"], v["description"], variant_source(v), "prior") for v in VARIANTS]
    runs += [("seed", "the seed incumbent (seed_strategy.py): SMA cross 10/40 hours",
              (HERE / "seed_strategy.py").read_text(), "orchestrator"),
             ("cycle1-answer", "the cycle-1 answer: " + ANSWER["description"].replace(
                 "\n", " "),
              answer_source("cycle1_generate.md"), "orchestrator")]
    for variant_id, description, source, recorded_by in runs:
        if only is not None and variant_id not in only:
            continue
        figures = measure(config, settings.backtest, source, settings.slot, policy)
        echo(f"{variant_id:24s} annualised Sharpe {figures['sharpe_annualised']:6.2f}  "
             f"per obs {figures['sharpe_per_obs']:+.5f}  return {figures['total_return']:7.2%}"
             f"  trades {figures['n_trades']:4d}  n_obs {figures['n_obs']}")
        rows.append({"variant_id": variant_id, "description": description,
                     "recorded_by": recorded_by,
                     "source_sha256": hashlib.sha256(source.encode()).hexdigest(),
                     **figures, "source": source})
    return {"family": settings.trial_family, "window": dict(settings.backtest),
            "config": CONFIG.name,
            "note": "Written by prior_trials.py: the offline search behind the cycle-1 "
                    "answer, re-run in the sandbox on the proving window. Rows recorded_by "
                    "'prior' are loaded into the lab's trial registry; 'orchestrator' rows "
                    "(seed and answer) are recorded by the orchestrator itself.",
            "trials": rows}


def main(argv: list[str] | None = None) -> int:
    """Write (or ``--check``) ``prior_trials.json``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="recompute and compare with the file instead of writing it")
    args = parser.parse_args(argv)
    data = compute()
    if args.check:
        old = json.loads(OUT.read_text())
        bad = [f"{a['variant_id']}: {k}" for a, b in zip(old["trials"], data["trials"],
                                                        strict=True)
               for k in ("sharpe_per_obs", "n_obs", "source_sha256")
               if not (a[k] == b[k] or (isinstance(a[k], float)
                                         and math.isclose(a[k], b[k], rel_tol=1e-9)))]
        if bad or old["window"] != data["window"]:
            print("prior_trials.json is stale: " + ", ".join(bad or ["window"]))
            return 1
        print("prior_trials.json matches a fresh run")
        return 0
    OUT.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {OUT} ({sum(r['recorded_by'] == 'prior' for r in data['trials'])} prior "
          f"trials)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
