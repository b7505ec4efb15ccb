"""Validated inputs: Heston parameters, option legs and contract checks."""

from __future__ import annotations

import math
from typing import Any

import attrs

from argus_gpu_heston.errors import HestonParameterError

__all__ = ["HestonParams", "OptionLeg", "check_contract", "check_kind"]

_LOG_RANGE = 700.0  # |log| of a forward or discount factor that stays a normal double


def _finite(name: str, value: float) -> float:
    if (not isinstance(value, (int, float)) or isinstance(value, bool)
            or not math.isfinite(value)):
        raise HestonParameterError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _to_float(value: Any) -> Any:
    """float(value), but a bool passes through unchanged so the validator refuses it by
    name (float(True) would be a silent 1.0)."""
    return value if isinstance(value, bool) else float(value)


def _validate_params(inst: HestonParams, attribute: Any, value: float) -> None:
    name = attribute.name
    _finite(name, value)
    if name == "v0" and value < 0:
        raise HestonParameterError(f"Heston parameter v0 (initial variance) must be >= 0, "
                                   f"got {value}: a variance cannot be negative")
    if name == "theta" and value < 0:
        raise HestonParameterError(f"Heston parameter theta (long-run variance) must be >= 0, got "
                                   f"{value}: a variance cannot be negative")
    if name == "kappa" and value <= 0:
        raise HestonParameterError(f"Heston parameter kappa (mean-reversion speed) must be "
                                   f"> 0, got {value}")
    if name == "sigma" and value <= 0:
        raise HestonParameterError(f"Heston parameter sigma (volatility of variance) must be "
                                   f"> 0, got {value}")
    if name == "rho" and not -1.0 < value < 1.0:
        raise HestonParameterError(f"Heston parameter rho (spot/variance correlation) must satisfy "
                                   f"|rho| < 1, got {value}")


@attrs.frozen
class HestonParams:
    """The five Heston parameters, validated on construction.

    dv = kappa (theta - v) dt + sigma sqrt(v) dW_v,  d ln S = (mu - v/2) dt + sqrt(v) dW_s,
    corr(dW_s, dW_v) = rho.  Variances are annualised (0.04 = 20% vol).
    """

    v0: float = attrs.field(validator=_validate_params, converter=_to_float)
    kappa: float = attrs.field(validator=_validate_params, converter=_to_float)
    theta: float = attrs.field(validator=_validate_params, converter=_to_float)
    sigma: float = attrs.field(validator=_validate_params, converter=_to_float)
    rho: float = attrs.field(validator=_validate_params, converter=_to_float)

    @property
    def feller(self) -> bool:
        """True when 2 kappa theta >= sigma^2 (the variance never touches zero)."""
        return 2.0 * self.kappa * self.theta >= self.sigma ** 2

    def as_tuple(self) -> tuple[float, float, float, float, float]:
        """(v0, kappa, theta, sigma, rho)."""
        return (self.v0, self.kappa, self.theta, self.sigma, self.rho)


def check_kind(kind: str) -> str:
    """Normalise an option kind to "call" or "put"."""
    k = str(kind).lower()
    if k in ("call", "c"):
        return "call"
    if k in ("put", "p"):
        return "put"
    raise HestonParameterError(f"option kind must be 'call' or 'put', got {kind!r}")


def _validate_leg(inst: OptionLeg, attribute: Any, value: Any) -> None:
    if attribute.name == "strike":
        _finite("strike", value)
        if value <= 0:
            raise HestonParameterError(f"option leg strike must be > 0, got {value}")
    elif attribute.name == "quantity":
        _finite("quantity", value)


@attrs.frozen
class OptionLeg:
    """One European leg of a spread: quantity > 0 long, < 0 short, per unit of underlying."""

    kind: str = attrs.field(converter=check_kind)
    strike: float = attrs.field(validator=_validate_leg, converter=_to_float)
    quantity: float = attrs.field(validator=_validate_leg, converter=_to_float)

    def payoff(self, spot: Any) -> Any:
        """Signed payoff of the leg at expiry for terminal price(s) ``spot``."""
        import numpy as np

        intrinsic = (np.maximum(spot - self.strike, 0.0) if self.kind == "call"
                     else np.maximum(self.strike - spot, 0.0))
        return self.quantity * intrinsic


def check_contract(s0: float, t: float, r: float, q: float) -> None:
    """Refuse a non-positive spot or maturity, non-finite rates and a forward or discount
    factor beyond floating-point range, naming the culprit."""
    _finite("s0", s0)
    _finite("t", t)
    _finite("r", r)
    _finite("q", q)
    if s0 <= 0:
        raise HestonParameterError(f"spot s0 must be > 0, got {s0}")
    if t <= 0:
        raise HestonParameterError(f"maturity t must be > 0 years, got {t}")
    # e^{(r - q) t} and e^{-r t} overflow to inf or underflow to 0 past e^{+-700}, and the
    # pricers divide by both: refuse here rather than fail in the arithmetic
    log_fwd, log_disc = math.log(s0) + (r - q) * t, -r * t
    if not abs(log_fwd) < _LOG_RANGE:
        raise HestonParameterError(
            f"the forward s0 exp((r - q) t) = exp({log_fwd:.6g}) is out of floating-point "
            f"range (s0={s0}, r={r}, q={q}, t={t}); rates are annual decimals (0.05 = 5%)")
    if not abs(log_disc) < _LOG_RANGE:
        raise HestonParameterError(
            f"the discount factor exp(-r t) = exp({log_disc:.6g}) is out of floating-point "
            f"range (r={r}, t={t}); rates are annual decimals (0.05 = 5%)")
