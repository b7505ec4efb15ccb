"""``argus heston``: price, probability of profit and calibration from the command line.

Errors are Argus errors (ConfigError for bad parameters, PluginError for a missing
backend); the core CLI prints them without a traceback.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import attrs
import click
from rich.console import Console
from rich.markup import escape

from argus_core import ArgusError, FiniteFloat
from argus_gpu_heston.backends import BACKENDS
from argus_gpu_heston.errors import HestonParameterError
from argus_gpu_heston.mc_common import ESTIMATORS
from argus_gpu_heston.params import HestonParams, OptionLeg
from argus_gpu_heston.pricer import HestonPricer, HestonSettings


def _model_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The market and model options shared by price and pop."""
    opts = [
        click.option("--s0", type=float, required=True, help="Spot price."),
        click.option("--t", "t", type=float, required=True, help="Maturity in years."),
        click.option("--r", "r", type=float, default=0.0, show_default=True,
                     help="Risk-free rate (continuous)."),
        click.option("--q", "q", type=float, default=0.0, show_default=True,
                     help="Dividend yield (continuous)."),
        click.option("--v0", type=float, required=True, help="Initial variance."),
        click.option("--kappa", type=float, required=True, help="Mean-reversion speed."),
        click.option("--theta", type=float, required=True, help="Long-run variance."),
        click.option("--sigma", type=float, required=True, help="Volatility of variance."),
        click.option("--rho", type=float, required=True, help="Spot/variance correlation."),
        click.option("--paths", type=click.IntRange(2, MAX_PATHS), default=None,
                     help="Monte Carlo paths."),
        click.option("--steps", type=click.IntRange(1, MAX_STEPS), default=None,
                     help="Time steps."),
        click.option("--scheme", type=click.Choice(["qe", "euler"]), default=None,
                     help="Discretisation (default qe)."),
        click.option("--backend", type=click.Choice(list(BACKENDS)), default=None,
                     help="Where the Monte Carlo runs (default auto)."),
        click.option("--dtype", type=click.Choice(["float32", "float64"]), default=None,
                     help="Kernel precision (default float64)."),
        click.option("--seed", type=int, default=None, help="Philox seed."),
        click.option("--json", "as_json", is_flag=True, help="Print JSON."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


#: Typing slips, not budgets: 2^31 paths of float64 are tens of GiB of host memory (a
#: MemoryError traceback beyond), and 10^6 steps is daily monitoring for 4,000 years (10^8
#: ran for hours).
MAX_PATHS, MAX_STEPS = 2**31, 10**6


def _emit(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    width = max(len(k) for k in data)
    for key, value in data.items():
        if isinstance(value, float):
            value = f"{value:.10g}"
        elif isinstance(value, dict):
            value = ", ".join(f"{k}: {v:.6g}" for k, v in value.items())
        click.echo(f"{key:<{width}}  {value}")


class HestonGroup(click.Group):
    """Prints Argus errors itself, escaped: the core CLI prints them as rich markup, which
    would swallow ``[cuda]`` in the install hint (``pip install 'argus-gpu-heston[cuda]'``).
    ``argus --traceback`` still re-raises."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            try:
                return super().invoke(ctx)
            except MemoryError:  # too many paths for this machine: not a bug
                raise HestonParameterError(
                    "not enough memory for this many Monte Carlo paths; lower --paths") \
                    from None
        except ArgusError as exc:
            if ctx.meta.get("argus.traceback"):
                raise
            Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}",
                                       highlight=False, soft_wrap=True)
            ctx.exit(exc.exit_code)


@click.group(name="heston", cls=HestonGroup)
def heston() -> None:
    """Heston pricing, probability of profit and calibration (argus-gpu-heston)."""


@heston.command()
@_model_options
@click.option("--strike", type=float, required=True, help="Strike.")
@click.option("--type", "kind", type=click.Choice(["call", "put"]), default="call",
              show_default=True)
@click.option("--method", type=click.Choice(["analytic", "mc"]), default="analytic",
              show_default=True)
@click.option("--estimator", type=click.Choice(list(ESTIMATORS)), default=None,
              help="Monte Carlo estimator (default conditional: Black-Scholes given the "
                   "variance path; plain: the simulated payoff).")
def price(s0: float, t: float, r: float, q: float, v0: float, kappa: float, theta: float,
          sigma: float, rho: float, paths: int | None, steps: int | None, scheme: str | None,
          backend: str | None, dtype: str | None, seed: int | None, as_json: bool,
          strike: float, kind: str, method: str, estimator: str | None) -> None:
    """European call or put price (analytic, or Monte Carlo with its standard error)."""
    params = HestonParams(v0, kappa, theta, sigma, rho)
    res = HestonPricer().price(kind, s0, strike, t, r, q, params, method=method, scheme=scheme,
                               paths=paths, steps=steps, backend=backend, seed=seed, dtype=dtype,
                               estimator=estimator)
    _emit({"type": kind, **attrs.asdict(res)}, as_json)


def _parse_legs(legs: tuple[str, ...], put_spread: str | None, call_spread: str | None,
                condor: str | None) -> list[OptionLeg]:
    out: list[OptionLeg] = []
    try:
        for text in legs:
            kind, strike, qty = text.split(":")
            if float(qty) == 0:
                raise ValueError(f"--leg {text}: a leg's quantity cannot be 0")
            out.append(OptionLeg(kind, float(strike), float(qty)))
        if put_spread:
            short, long_ = (float(x) for x in put_spread.split(":"))
            out += [OptionLeg("put", short, -1.0), OptionLeg("put", long_, 1.0)]
        if call_spread:
            short, long_ = (float(x) for x in call_spread.split(":"))
            out += [OptionLeg("call", short, -1.0), OptionLeg("call", long_, 1.0)]
        if condor:
            lp, sp, sc, lc = (float(x) for x in condor.split(":"))
            out += [OptionLeg("put", lp, 1.0), OptionLeg("put", sp, -1.0),
                    OptionLeg("call", sc, -1.0), OptionLeg("call", lc, 1.0)]
    except ValueError as exc:
        raise HestonParameterError(f"cannot read the legs ({exc}); use --leg KIND:STRIKE:QTY, "
                                   f"--put-spread SHORT:LONG, --call-spread SHORT:LONG or "
                                   f"--iron-condor LONGPUT:SHORTPUT:SHORTCALL:LONGCALL") from None
    if not out:
        raise HestonParameterError("give at least one leg (--leg, --put-spread, --call-spread "
                                   "or --iron-condor)")
    return out


@heston.command()
@_model_options
@click.option("--leg", "legs", multiple=True, help="KIND:STRIKE:QTY, e.g. put:95:-1 (repeat).")
@click.option("--put-spread", help="Short put credit spread SHORT:LONG, e.g. 95:90.")
@click.option("--call-spread", help="Short call credit spread SHORT:LONG, e.g. 105:110.")
@click.option("--iron-condor", "condor", help="LONGPUT:SHORTPUT:SHORTCALL:LONGCALL.")
@click.option("--premium", type=float, required=True, help="Net credit received per unit.")
@click.option("--drift", type=float, default=None,
              help="Real-world growth rate of the underlying (default: risk-neutral r - q).")
def pop(s0: float, t: float, r: float, q: float, v0: float, kappa: float, theta: float,
        sigma: float, rho: float, paths: int | None, steps: int | None, scheme: str | None,
        backend: str | None, dtype: str | None, seed: int | None, as_json: bool,
        legs: tuple[str, ...], put_spread: str | None, call_spread: str | None,
        condor: str | None, premium: float, drift: float | None) -> None:
    """Probability of profit of a spread held to expiry (Monte Carlo)."""
    params = HestonParams(v0, kappa, theta, sigma, rho)
    position = _parse_legs(legs, put_spread, call_spread, condor)
    res = HestonPricer().pop(position, s0, t, r, q, params, premium, drift=drift, paths=paths,
                             steps=steps, seed=seed, scheme=scheme, backend=backend, dtype=dtype)
    data = attrs.asdict(res)
    data["legs"] = [f"{leg.quantity:+g} {leg.kind} {leg.strike:g}" for leg in position]
    _emit(data, as_json)


@heston.command()
@click.option("--chain", type=click.Path(dir_okay=False), default=None,
              help="iVolatility RawIV CSV (default: the bundled SPX chain of 2011-01-03..07).")
@click.option("--date", "trade_date", default=None, help="Trade date (default: first in file).")
@click.option("--threshold", type=FiniteFloat(min=0, min_open=True), default=3.5,
              show_default=True,
              help="Flag quotes whose robust z-score exceeds this.")
@click.option("--top", type=click.IntRange(0), default=20, show_default=True,
              help="Rows of the table shown.")
@click.option("--max-nfev", type=click.IntRange(1), default=200, show_default=True,
              help="Optimizer iteration budget.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def calibrate(chain: str | None, trade_date: str | None, threshold: float, top: int,
              max_nfev: int, as_json: bool) -> None:
    """Fit Heston to an option chain and rank implied-vol anomalies."""
    from argus_gpu_heston.calibration import calibrate as fit
    from argus_gpu_heston.calibration import load_chain

    res = fit(load_chain(chain, trade_date), threshold=threshold, max_nfev=max_nfev)
    p = res.params
    rows = res.table[:top]
    if as_json:
        click.echo(json.dumps({
            "trade_date": res.trade_date.isoformat(), "params": attrs.asdict(p),
            "feller": p.feller, "n_quotes": res.n_quotes, "rmse_vol_pts": res.rmse_vol_pts,
            "mae_vol_pts": res.mae_vol_pts, "max_abs_vol_pts": res.max_abs_vol_pts,
            "n_flagged": len(res.anomalies), "threshold": threshold,
            "table": [attrs.asdict(row) for row in rows]}, indent=2, default=str))
        return
    click.echo(f"trade date {res.trade_date}  quotes {res.n_quotes}  "
               f"optimizer evaluations {res.nfev}")
    click.echo(f"v0={p.v0:.6f} kappa={p.kappa:.4f} theta={p.theta:.6f} sigma={p.sigma:.4f} "
               f"rho={p.rho:.4f}  (Feller {'holds' if p.feller else 'violated'})")
    click.echo(f"fit error: RMSE {res.rmse_vol_pts:.3f} vol pts, MAE {res.mae_vol_pts:.3f}, "
               f"max {res.max_abs_vol_pts:.3f}; flagged {len(res.anomalies)} quotes with "
               f"|z| > {threshold}")
    click.echo(f"{'rank':>4} {'expiry':>10} {'type':>4} {'strike':>8} {'ln(K/F)':>8} "
               f"{'mkt iv':>7} {'model':>7} {'resid':>7} {'z':>7} flag")
    for i, row in enumerate(rows, start=1):
        z = f"{row.zscore:7.2f}" if math.isfinite(row.zscore) else "    nan"
        click.echo(f"{i:>4} {row.expiry.isoformat():>10} {row.kind:>4} {row.strike:>8.1f} "
                   f"{row.moneyness:>8.3f} {row.market_iv * 100:>7.2f} {row.model_iv * 100:>7.2f} "
                   f"{row.residual_vol_pts:>7.2f} {z} {'*' if row.flagged else ''}")


__all__ = ["HestonSettings", "heston"]
