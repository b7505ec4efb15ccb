"""The ``heston`` pricer that strategies get from ``ctx.pricer("heston")``."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import attrs
import numpy as np

from argus_core import (
    AT_LEAST_ONE,
    ModelParams,
    Pricer,
    PricingResult,
    in_range,
    optional,
)
from argus_core import OptionLeg as CoreOptionLeg
from argus_gpu_heston.analytic import heston_price
from argus_gpu_heston.backends import BACKENDS, get_backend
from argus_gpu_heston.errors import HestonParameterError
from argus_gpu_heston.mc_common import DTYPES, ESTIMATORS, SCHEMES, combine_sums, make_spec
from argus_gpu_heston.params import HestonParams, OptionLeg, check_contract, check_kind

DEFAULT_QUANTILES = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)


def _one_of(*choices: str) -> Any:
    return attrs.validators.in_(choices)


@attrs.frozen
class HestonSettings:
    """``[plugins.heston]``: defaults of the Monte Carlo engine.

    backend: auto | cuda | opencl | cpu (auto: CUDA, then an OpenCL GPU, then CPU).
    dtype: float64 | float32 (float32: 3.4x Euler and 4.6x QE on an H200, built with fast
        math; its paths stay within 3e-6 of the CPU backend's).
    paths: default number of paths (rounded up to an even number: paths come in pairs).
    steps: default number of time steps; unset = ceil(steps_per_year * t), at least min_steps.
    steps_per_year / min_steps: see steps (252 = daily monitoring for touch probabilities).
    scheme: qe (Andersen's quadratic-exponential, martingale-corrected) | euler (full truncation).
    seed: Philox seed; the same seed gives the same paths on every backend.
    antithetic / control_variate: variance reduction switches.
    estimator: conditional (default: each path contributes its payoff's expectation given
        the variance path, a Black-Scholes formula; same mean as the simulated payoff,
        about 10-80x less variance) | plain (the simulated payoff).
    """

    backend: str = attrs.field(default="auto", validator=_one_of(*BACKENDS))
    dtype: str = attrs.field(default="float64", validator=_one_of(*DTYPES))
    paths: int = attrs.field(default=100_000, validator=in_range(2))
    steps: int | None = attrs.field(default=None, validator=optional(AT_LEAST_ONE))
    steps_per_year: int = attrs.field(default=252, validator=AT_LEAST_ONE)
    min_steps: int = attrs.field(default=8, validator=AT_LEAST_ONE)
    scheme: str = attrs.field(default="qe", validator=_one_of(*SCHEMES))
    seed: int = attrs.field(default=0, validator=in_range(0, 2**64, hi_open=True))
    antithetic: bool = True
    control_variate: bool = True
    estimator: str = attrs.field(default="conditional", validator=_one_of(*ESTIMATORS))

    def steps_for(self, t: float) -> int:
        """Default step count for maturity ``t`` (years)."""
        if self.steps is not None:
            return self.steps
        return max(self.min_steps, math.ceil(self.steps_per_year * t - 1e-9))


@attrs.frozen
class PriceResult:
    """A European price: stderr is 0 and paths/steps are 0 for the analytic method."""

    price: float
    stderr: float
    method: str
    backend: str
    paths: int
    steps: int
    elapsed_ms: float


@attrs.frozen
class PopResult:
    """Probability-of-profit statistics of a position held to expiry.

    P&L per unit of underlying = premium + sum(quantity * payoff(S_T)).  p_max_loss is
    NaN when the loss is unbounded (net short calls); p_touch_short is NaN without a
    short leg; touching is checked at every simulation step (discrete monitoring).
    """

    p_profit: float
    expected_pnl: float
    p_max_loss: float
    p_touch_short: float
    pnl_quantiles: dict[float, float]
    backend: str
    paths: int


def _position_extremes(legs: Sequence[OptionLeg], premium: float) -> float:
    """Worst P&L of the piecewise-linear expiry payoff (-inf when unbounded below)."""
    call_slope = sum(leg.quantity for leg in legs if leg.kind == "call")
    if call_slope < -1e-12:
        return -math.inf
    nodes = np.array([0.0, *sorted({leg.strike for leg in legs})])
    pnl = premium + sum(leg.payoff(nodes) for leg in legs)
    return float(np.min(pnl))


#: The names of :data:`argus_core.ModelParams` the ``heston`` pricer reads.
MODEL_PARAMS = tuple(f.name for f in attrs.fields(HestonParams))


def params_of(model: ModelParams | None) -> HestonParams:
    """The core's model-parameter mapping as :class:`HestonParams`, naming any missing or
    unknown key."""
    if model is None:
        raise HestonParameterError(f"the heston pricer needs model parameters "
                                   f"{', '.join(MODEL_PARAMS)}; got none")
    missing = [k for k in MODEL_PARAMS if k not in model]
    unknown = sorted(set(model) - set(MODEL_PARAMS))
    if missing or unknown:
        raise HestonParameterError(
            "heston model parameters: " + "; ".join(
                ([f"missing {', '.join(missing)}"] if missing else [])
                + ([f"unknown {', '.join(unknown)}"] if unknown else []))
            + f" (expected {', '.join(MODEL_PARAMS)})")
    return HestonParams(**{k: model[k] for k in MODEL_PARAMS})


def _leg_of(leg: CoreOptionLeg) -> OptionLeg:
    return OptionLeg(leg.kind, leg.strike, leg.quantity)


class HestonPricer(Pricer):
    """Heston analytic prices, Monte Carlo prices and probability of profit.

    ``settings`` is the validated ``[plugins.heston]`` table (or None for defaults).
    Strategies call the core protocol (:meth:`price_option`,
    :meth:`probability_of_profit`, with ``model`` naming :data:`MODEL_PARAMS`); the
    plugin's own :meth:`price` and :meth:`pop` (its CLI, benchmarks and calibration)
    take the backend, seed, paths and steps explicitly too.
    """

    name: ClassVar[str] = "heston"

    def __init__(self, settings: HestonSettings | None = None) -> None:
        self.settings = settings or HestonSettings()

    # -- description ---------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """Methods, schemes and the backends that can run here."""
        from argus_gpu_heston.backends import available_backends

        return {
            "name": self.name,
            "methods": ["analytic", "mc"],
            "schemes": sorted(SCHEMES),
            "dtypes": sorted(DTYPES),
            "capabilities": ["price", "pop", "calibrate"],
            "backends": available_backends(),
            "default_backend": get_backend(self.settings.backend).name,
            "settings": attrs.asdict(self.settings),
        }

    # -- the core pricer protocol ------------------------------------------------------
    def price_option(self, leg: CoreOptionLeg, spot: float, t_years: float, *,
                     rate: float = 0.0, dividend_yield: float = 0.0,
                     model: ModelParams | None = None, paths: int | None = None,
                     seed: int | None = None) -> PricingResult:
        """``leg.quantity`` x the Heston price of the option: analytic (exact) when
        ``paths`` is None, else Monte Carlo on the configured backend."""
        params = params_of(model)
        method = "analytic" if paths is None else "mc"
        res = self.price(leg.kind, spot, leg.strike, t_years, rate, dividend_yield, params,
                         method=method, paths=paths, seed=seed)
        return PricingResult(self.name, res.backend, price=leg.quantity * res.price,
                             stderr=abs(leg.quantity) * res.stderr, paths=res.paths,
                             details={"method": res.method, "steps": res.steps,
                                      "elapsed_ms": res.elapsed_ms})

    def probability_of_profit(self, legs: Sequence[CoreOptionLeg], spot: float,
                              t_years: float, premium: float, *, rate: float = 0.0,
                              dividend_yield: float = 0.0, model: ModelParams | None = None,
                              paths: int | None = None, seed: int | None = None
                              ) -> PricingResult:
        """Heston Monte Carlo probability of profit (:meth:`pop`, risk-neutral)."""
        params = params_of(model)
        res = self.pop([_leg_of(leg) for leg in legs], spot, t_years, rate, dividend_yield,
                       params, premium, paths=paths, seed=seed)
        p = res.p_profit
        return PricingResult(self.name, res.backend, p_profit=p,
                             expected_pnl=res.expected_pnl,
                             stderr=math.sqrt(p * (1.0 - p) / res.paths) if res.paths else 0.0,
                             paths=res.paths,
                             details={"p_max_loss": res.p_max_loss,
                                      "p_touch_short": res.p_touch_short,
                                      "pnl_quantiles": res.pnl_quantiles})

    # -- helpers -------------------------------------------------------------------
    def _sim(self, params: HestonParams, t: float, mu: float, paths: int | None,
             steps: int | None, scheme: str | None, dtype: str | None, seed: int | None,
             estimator: str | None = None) -> Any:
        s = self.settings
        # None (not any falsy value) means "the settings' choice": '' is refused below
        estimator = s.estimator if estimator is None else estimator
        if estimator not in ESTIMATORS:
            raise HestonParameterError(
                f"estimator must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")
        return make_spec(params, t, mu, s.paths if paths is None else paths,
                         s.steps_for(t) if steps is None else steps,
                         s.scheme if scheme is None else scheme,
                         s.dtype if dtype is None else dtype, s.seed if seed is None else seed,
                         s.antithetic, conditional=estimator == "conditional")

    def _backend(self, backend: str | None) -> Any:
        if backend is not None and not backend:
            raise HestonParameterError(
                f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        return get_backend(self.settings.backend if backend is None else backend)

    # -- pricing -------------------------------------------------------------------
    def price(self, kind: str, s0: float, strike: float, t: float, r: float, q: float,
              params: HestonParams, method: str = "analytic", scheme: str | None = None,
              paths: int | None = None, steps: int | None = None, backend: str | None = None,
              seed: int | None = None, dtype: str | None = None,
              estimator: str | None = None) -> PriceResult:
        """European call or put price, analytic (exact) or by Monte Carlo (with stderr).

        ``estimator`` (Monte Carlo only) overrides the settings' conditional/plain choice.
        """
        start = time.perf_counter()
        kind = check_kind(kind)
        check_contract(s0, t, r, q)
        if not isinstance(params, HestonParams):
            raise HestonParameterError(
                f"params must be a HestonParams, got {type(params).__name__}")
        try:
            if isinstance(strike, bool):  # True is an int to Python: not a strike of 1
                raise TypeError
            strike = float(strike)
        except (TypeError, ValueError):
            raise HestonParameterError(f"strike must be a number, got {strike!r}") from None
        if not (math.isfinite(strike) and strike > 0):
            raise HestonParameterError(f"strike must be a finite number > 0, got {strike!r}")
        if method == "analytic":
            value = float(heston_price(kind, s0, strike, t, r, q, params))
            return PriceResult(value, 0.0, "analytic", "numpy", 0, 0,
                               (time.perf_counter() - start) * 1e3)
        if method != "mc":
            raise HestonParameterError(f"method must be 'analytic' or 'mc', got {method!r}")
        spec = self._sim(params, t, r - q, paths, steps, scheme, dtype, seed, estimator)
        be = self._backend(backend)
        sums = be.price_sums(spec, s0, strike, math.exp(-r * t), (r - q) * t, kind == "call")
        est = combine_sums(sums, spec.n_pairs, self.settings.control_variate)
        return PriceResult(est.value, est.stderr, f"mc-{scheme or self.settings.scheme}",
                           be.name, spec.n_paths, spec.n_steps,
                           (time.perf_counter() - start) * 1e3)

    # -- probability of profit --------------------------------------------------------
    def pop(self, legs: Sequence[OptionLeg], s0: float, t: float, r: float, q: float,
            params: HestonParams, premium: float, drift: float | None = None,
            paths: int | None = None, steps: int | None = None, seed: int | None = None,
            scheme: str | None = None, backend: str | None = None, dtype: str | None = None,
            quantiles: Sequence[float] = DEFAULT_QUANTILES) -> PopResult:
        """Probability of profit of ``legs`` held to expiry, risk-neutral or under ``drift``.

        ``premium`` is the net credit received (positive for credit spreads); ``drift``
        replaces r - q as the expected growth rate of the underlying (None = risk-neutral).
        """
        check_contract(s0, t, r, q)
        legs = list(legs)
        if not legs or not all(isinstance(leg, OptionLeg) for leg in legs):
            raise HestonParameterError("pop needs a non-empty list of OptionLeg")
        if not math.isfinite(premium):
            raise HestonParameterError(f"premium must be finite, got {premium!r}")
        if drift is not None and not math.isfinite(drift):
            raise HestonParameterError(f"drift must be finite or None, got {drift!r}")
        mu = r - q if drift is None else float(drift)
        spec = self._sim(params, t, mu, paths, steps, scheme, dtype, seed)
        be = self._backend(backend)
        s_end, s_min, s_max = (np.asarray(a, dtype=np.float64) for a in be.paths(spec, s0))
        pnl = premium + sum(leg.payoff(s_end) for leg in legs)
        worst = _position_extremes(legs, premium)
        if math.isfinite(worst):
            p_max_loss = float(np.mean(pnl <= worst + 1e-9 * (1.0 + abs(worst))))
        else:
            p_max_loss = math.nan
        shorts = [leg for leg in legs if leg.quantity < 0]
        if shorts:
            k = min(shorts, key=lambda leg: abs(leg.strike - s0)).strike
            touched = s_min <= k if k <= s0 else s_max >= k
            p_touch = float(np.mean(touched))
        else:
            p_touch = math.nan
        qs = [float(x) for x in quantiles]
        qv = np.quantile(pnl, qs) if qs else []
        return PopResult(p_profit=float(np.mean(pnl > 0)), expected_pnl=float(np.mean(pnl)),
                         p_max_loss=p_max_loss, p_touch_short=p_touch,
                         pnl_quantiles={q_: float(v) for q_, v in zip(qs, qv, strict=True)},
                         backend=be.name, paths=spec.n_paths)
