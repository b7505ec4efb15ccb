"""The core pricer protocol: a pricer implements the questions it can answer; the others
raise NotImplementedError naming it, and ``supports`` says which are which."""

from __future__ import annotations

from typing import Any

import pytest

from argus_core import OptionLeg, Pricer, PricingResult


class DescribeOnly(Pricer):
    """Answers nothing but ``describe``."""

    name = "tiny"

    def describe(self) -> dict[str, Any]:
        """Nothing to offer."""
        return {}


class Intrinsic(Pricer):
    """Prices a leg at its intrinsic value (a deterministic, zero-vol model)."""

    name = "intrinsic"

    def describe(self) -> dict[str, Any]:
        """One method."""
        return {"methods": ["price_option"]}

    def price_option(self, leg: OptionLeg, spot: float, t_years: float, **kw: Any
                     ) -> PricingResult:
        """``quantity`` x max(0, +-(spot - strike))."""
        sign = 1.0 if leg.kind == "call" else -1.0
        return PricingResult(self.name, "python",
                             price=leg.quantity * max(0.0, sign * (spot - leg.strike)))


def test_unsupported_questions_raise_naming_the_pricer() -> None:
    tiny = DescribeOnly()
    assert not tiny.supports("price_option") and not tiny.supports("probability_of_profit")
    with pytest.raises(NotImplementedError, match="pricer 'tiny' does not implement "
                                                  "probability_of_profit"):
        tiny.probability_of_profit([OptionLeg("put", 95.0, -1.0)], 100.0, 0.1, 1.0)
    with pytest.raises(NotImplementedError, match="pricer 'tiny' does not implement "
                                                  "price_option"):
        tiny.price_option(OptionLeg("call", 95.0), 100.0, 0.1)


def test_a_pricer_supports_what_it_overrides() -> None:
    pricer = Intrinsic()
    assert pricer.supports("price_option") and not pricer.supports("probability_of_profit")
    assert not pricer.supports("no_such_method")
    assert pricer.price_option(OptionLeg("p", 110.0, -2), 100.0, 0.5).price == -20.0


def test_option_legs_are_validated() -> None:
    assert OptionLeg("C", 100) == OptionLeg("call", 100.0, 1.0)
    with pytest.raises(ValueError, match="call' or 'put'"):
        OptionLeg("straddle", 100.0)
    with pytest.raises(ValueError, match="strike"):
        OptionLeg("put", 0.0)
    with pytest.raises(ValueError, match="quantity"):
        OptionLeg("put", 90.0, float("nan"))
