"""``vrp_put_spread``: sell put credit spreads when implied vol beats realised vol in calm regimes.

On each underlying's daily ``Bar`` (the last event of a day on ``vrp_options``):

1. manage the open spread: close it (a two-leg basket, reduce-only) at the profit
   target (closing cost <= (1 - profit_target) x credit), at the stop (closing
   cost >= stop_multiple x credit) or when ``exit_dte`` days are left;
2. otherwise consider a new spread when
   - the variance risk premium is there: ATM implied vol (inverted from the
     book closest to the money) minus 20-day realised vol >= ``min_vrp``;
   - the regime is calm: BOCPD ``P(change) <= max_p_change``, no ``vol_spike``
     and ``vol_regime`` not stressed (regime ``Signal`` events published by the venue);
   - liquidity is acceptable: the short leg's relative spread <= ``max_rel_spread``;
3. pick the expiry closest to ``target_dte`` (at least ``min_dte``), the short strike by
   |delta| (Black-Scholes at the strike's own implied vol) or by probability of profit
   (Heston Monte Carlo through the ``heston`` pricer when installed, lognormal
   otherwise), the long strike ``width`` below, and
   ``contracts = floor(budget / worst loss per contract)`` with
   ``budget = min(risk_budget x equity, max_risk_per_play)`` (the per-play cap) and the
   worst loss counting the limits' slippage and the round trip's commissions, at
   most ``max_contracts`` and the short book's best-level size;
4. send both legs as one basket: SELL the short put at its best bid, BUY the long
   put at its best ask (LIMIT, IOC), so fills take displayed depth only.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from argus_lab.regime import STRESSED

from argus_core import (
    Bar,
    DataError,
    FeeSchedule,
    Intent,
    MarketEvent,
    OptionLeg,
    OrderType,
    Pricer,
    Side,
    Strategy,
    StrategyContext,
    TimeInForce,
    to_decimal,
)
from argus_strategy_vrp.config import VrpSettings, option_fees
from argus_strategy_vrp.constants import MULTIPLIER, STRATEGY, TICK_PER_CONTRACT, VENUE
from argus_strategy_vrp.instruments import PutContract
from argus_strategy_vrp.pricing import bs_put_delta, implied_vol_put, lognormal_pop

#: The pricer ``selection = "pop"`` asks (``register_pricers`` name), when one is installed.
HESTON = "heston"

DAY_NS = 86_400 * 1_000_000_000


class VrpPutSpread(Strategy):
    """The VRP put-credit-spread strategy (settings: ``[plugins.vrp]``)."""

    name = STRATEGY

    def __init__(self, settings: VrpSettings | None = None) -> None:
        self.s = settings or VrpSettings()
        self.s.check_width_on_grid()
        # underlying -> open spread {short, long, credit, opened_ns, basket}
        self.open: dict[str, dict[str, Any]] = {}
        self.n_baskets = 0
        # underlying -> proleptic ordinal of the last day whose bar it acted on
        self.last_day: dict[str, int] = {}
        self.last_decision: dict[str, str] = {}

    # -- state ---------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """Open spreads, the basket counter and each underlying's last day acted on (a
        copy: the checkpoint never shares a dict the strategy goes on changing)."""
        return {"open": copy.deepcopy(self.open), "n_baskets": self.n_baskets,
                "last_day": dict(self.last_day)}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state` output (a checkpoint without ``last_day`` too);
        anything else is a ``TypeError`` / ``ValueError`` naming what is wrong, before
        it could fail on a later bar (the runner reports it as a damaged checkpoint)."""
        if not isinstance(state, Mapping):
            raise TypeError(f"{STRATEGY} state must be a table, got {type(state).__name__}")
        spreads = state.get("open", {})
        if not isinstance(spreads, Mapping):
            raise TypeError(f"{STRATEGY} state 'open' must be a table of spreads, got "
                            f"{type(spreads).__name__}")
        restored = {}
        for und, spread in spreads.items():
            restored[str(und)] = _checked_spread(und, spread)
        n_baskets = state.get("n_baskets", 0)
        if isinstance(n_baskets, bool) or not isinstance(n_baskets, int) or n_baskets < 0:
            raise ValueError(f"{STRATEGY} state 'n_baskets' must be a count >= 0, got "
                             f"{n_baskets!r}")
        last_day = state.get("last_day", {})
        if not isinstance(last_day, Mapping) or not all(
                isinstance(d, int) and not isinstance(d, bool) for d in last_day.values()):
            raise ValueError(f"{STRATEGY} state 'last_day' must map underlyings to day "
                             f"ordinals, got {last_day!r}")
        self.open, self.n_baskets = restored, n_baskets
        self.last_day = {str(k): int(v) for k, v in last_day.items()}

    # -- events --------------------------------------------------------------------
    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent]:
        """Act once per underlying per day, on its bar: a second bar of a day already
        acted on (a duplicated row or event) or of an earlier day is ignored."""
        if type(event) is not Bar or not event.instrument_id.startswith(f"{VENUE}:"):
            return []
        und = event.instrument_id.split(":", 1)[1]
        if und not in self.s.symbols:
            return []
        day = _day_of(event.ts_ns)
        if day <= self.last_day.get(und, day - 1):
            # Before: a repeated bar managed the spread opened on the first one against the
            # same books, and a stop at close cost >= stop_multiple x credit could close it
            # at once, paying both half-spreads twice in one day.
            self.last_decision[und] = f"bar of {_date_of(day)} already acted on: ignored"
            return []
        self.last_day[und] = day
        spread = self.open.get(und)
        if spread is not None:
            return self._manage(und, spread, event, ctx)
        return self._enter(und, event, ctx)

    # -- exits ---------------------------------------------------------------------
    def _manage(self, und: str, spread: dict[str, Any], bar: Bar,
                ctx: StrategyContext) -> list[Intent]:
        pf = ctx.portfolio
        short_q = pf.position(spread["short"]).quantity
        long_q = pf.position(spread["long"]).quantity
        if short_q >= 0 and long_q <= 0:
            del self.open[und]  # never filled, unwound, or settled
            return []
        if "credit" not in spread:  # first bar after entry: read the filled prices
            credit = pf.position(spread["short"]).avg_price - pf.position(spread["long"]).avg_price
            spread["credit"] = float(credit)
            spread["contracts"] = int(min(-short_q, long_q))
        short_book = ctx.market.books.get(spread["short"])
        long_book = ctx.market.books.get(spread["long"])
        if short_book is None or long_book is None:
            return []
        ask, bid = short_book.best_ask(), long_book.best_bid()
        if ask is None:
            return []
        close_cost = ask - (bid or 0.0)
        credit = max(spread["credit"], 1e-9)
        dte = (PutContract.parse(spread["short"]).expiry.toordinal()
               - _day_of(bar.ts_ns))
        reason = None
        if close_cost <= (1.0 - self.s.profit_target) * credit:
            reason = f"profit target: close at {close_cost:.0f} vs credit {credit:.0f}"
        elif close_cost >= self.s.stop_multiple * credit:
            reason = f"stop: close at {close_cost:.0f} >= {self.s.stop_multiple} x credit"
        elif dte <= self.s.exit_dte:
            reason = f"time exit: {dte} days to expiry"
        if reason is None:
            return []
        self.n_baskets += 1
        basket = f"{STRATEGY}-{und}-close-{self.n_baskets}"
        intents = []
        if short_q < 0:
            intents.append(Intent(STRATEGY, spread["short"], Side.BUY, quantity=-short_q,
                                  limit_price=self._limit(ask, Side.BUY),
                                  order_type=OrderType.LIMIT,
                                  time_in_force=TimeInForce.IOC, reason=reason,
                                  basket_id=basket, reduce_only=True))
        if long_q > 0 and bid is not None:
            intents.append(Intent(STRATEGY, spread["long"], Side.SELL, quantity=long_q,
                                  limit_price=self._limit(bid, Side.SELL),
                                  order_type=OrderType.LIMIT,
                                  time_in_force=TimeInForce.IOC, reason=reason,
                                  basket_id=basket, reduce_only=True))
        return intents

    # -- entries -------------------------------------------------------------------
    def _enter(self, und: str, bar: Bar, ctx: StrategyContext) -> list[Intent]:
        market = ctx.market
        sid = f"{VENUE}:{und}"
        p_change = market.signal("bocpd_p_change", sid)
        regime = market.signal("vol_regime", sid)
        spike = market.signal("vol_spike", sid)
        rv = market.signal("realised_vol", sid)
        if (p_change is None or regime is None or rv is None
                or not all(_known(x) for x in (p_change, regime, rv))
                or not (spike is None or _known(spike))):
            # a NaN passed every comparison below (NaN > limit is False): fail closed
            return self._skip(und, "regime features not yet available (or not finite)")
        if p_change > self.s.max_p_change:
            return self._skip(und, f"P(change) {p_change:.2f} > {self.s.max_p_change}")
        if spike or regime == STRESSED or regime < 0:
            return self._skip(und, "volatility regime is not calm")
        s = bar.close
        today = _day_of(bar.ts_ns)
        chain = self._chain(und, today, market)
        if not chain:
            return self._skip(und, "no quoted expiry in the DTE window")
        dte, strikes = chain
        t = dte / 365.0
        atm_k = min(strikes, key=lambda k: abs(k[0].strike - s))
        atm_iv = self._iv(atm_k, s, t)
        if atm_iv is None:
            return self._skip(und, "cannot invert the ATM implied vol")
        vrp = atm_iv - rv
        if vrp < self.s.min_vrp:
            return self._skip(und, f"VRP {vrp:.3f} < {self.s.min_vrp}")
        pick = self._pick_short(strikes, s, t, ctx, atm_iv)
        if pick is None:
            return self._skip(und, "no short strike meets the selection rule")
        short_c, short_book, score = pick
        long_k = short_c.strike - self.s.width
        longs = [x for x in strikes if abs(x[0].strike - long_k) < 1e-9]
        if not longs:
            return self._skip(und, f"long strike {long_k:g} not quoted")
        long_c, long_book = longs[0]
        short_touch, long_touch = _two_sided(short_book), _two_sided(long_book)
        if short_touch is None or long_touch is None:
            return self._skip(und, "a leg's quote is one-sided, crossed or locked")
        (bid, short_ask), ask = short_touch, long_touch[1]
        mid = 0.5 * (bid + short_ask)
        if mid <= 0 or (short_ask - bid) / mid > self.s.max_rel_spread:
            return self._skip(und, "short leg too illiquid")
        credit = bid - ask
        if credit < self.s.min_credit:
            return self._skip(und, f"credit {credit:.0f} < {self.s.min_credit}")
        max_loss = self.s.width * MULTIPLIER - credit
        if max_loss <= 0:
            return self._skip(und, f"credit {credit:.0f} >= width: a crossed or stale quote")
        budget = min(to_decimal(self.s.risk_budget) * to_decimal(ctx.portfolio.equity),
                     to_decimal(self.s.max_risk_per_play))
        per_contract, per_play = self._fees(ctx, short_c, long_c, bid, ask)
        exact_loss = to_decimal(self.s.width) * MULTIPLIER - (to_decimal(bid) - to_decimal(ask))
        contracts = min(self._contracts_within(budget, exact_loss, per_contract, per_play),
                        self.s.max_contracts,
                        int(short_book.bid_levels()[0, 1]), int(long_book.ask_levels()[0, 1]))
        if contracts < 1:
            return self._skip(und, "risk budget below one contract's max loss")
        self.n_baskets += 1
        basket = f"{STRATEGY}-{und}-open-{self.n_baskets}"
        reason = (f"VRP {vrp:.3f}, P(change) {p_change:.2f}, {score}, credit {credit:.0f}, "
                  f"max loss {max_loss:.0f} x {contracts}")
        self.open[und] = {"short": short_c.instrument_id, "long": long_c.instrument_id,
                          "opened_ns": bar.ts_ns, "basket": basket}
        self.last_decision[und] = reason
        return [
            Intent(STRATEGY, short_c.instrument_id, Side.SELL, quantity=contracts,
                   limit_price=self._limit(bid, Side.SELL), order_type=OrderType.LIMIT,
                   time_in_force=TimeInForce.IOC, reason=reason, basket_id=basket),
            Intent(STRATEGY, long_c.instrument_id, Side.BUY, quantity=contracts,
                   limit_price=self._limit(ask, Side.BUY), order_type=OrderType.LIMIT,
                   time_in_force=TimeInForce.IOC, reason=reason, basket_id=basket),
        ]

    def _contracts_within(self, budget: float | Decimal, max_loss: float | Decimal,
                          fee_per_contract: float | Decimal,
                          fee_per_play: float | Decimal) -> int:
        """Most spreads whose worst loss stays within ``budget`` dollars.

        Per contract: ``max_loss`` (width x 100 - credit at the touch), the slippage the
        IOC limits allow (``limit_ticks`` on each leg) and ``fee_per_contract``; per play
        ``fee_per_play`` (both from :meth:`_fees`).  In decimal arithmetic on each
        amount as written (a float by its shortest repr): a budget of exactly n worst
        losses affords n spreads (in floats $11,785.80 / $906.60 was 12.999... and sold
        12 of the 13).
        """
        slippage = 2 * self.s.limit_ticks * Decimal(TICK_PER_CONTRACT)
        per = to_decimal(max_loss) + slippage + to_decimal(fee_per_contract)
        return math.floor((to_decimal(budget) - to_decimal(fee_per_play)) / per)

    def _fees(self, ctx: StrategyContext, short_c: PutContract, long_c: PutContract,
              bid: float, ask: float) -> tuple[Decimal, Decimal]:
        """(fees per contract, fixed fees per play) of the four fills of a play (open and
        an early close; a settlement pays none), from the schedule the fills will pay.

        That is the market's (the venue's with any ``[paper]`` overrides, e.g. a
        ``fixed_fee`` or ``taker_bps`` the settings know nothing of) when one is bound,
        else the venue's own.  Opens are priced at their limits; closes at the strike
        (x 100), the most a put can cost, so a fee in bps of notional stays a bound.
        (The paper broker's ``cost_multiplier`` is not visible here; at its default of 1
        this is exact.)
        """
        per_contract = per_play = Decimal(0)
        legs = ((short_c, self._limit(bid, Side.SELL)), (long_c, self._limit(ask, Side.BUY)))
        for contract, limit in legs:
            schedule = self._schedule(ctx, contract.instrument_id)
            worst_close = Decimal(repr(contract.strike)) * MULTIPLIER
            per_contract += schedule.unit_fee(limit) + schedule.unit_fee(worst_close)
            per_play += (schedule.fee(limit, Decimal(0), maker=False)
                         + schedule.fee(worst_close, Decimal(0), maker=False))
        return per_contract, per_play

    def _schedule(self, ctx: StrategyContext, instrument_id: str) -> FeeSchedule:
        """The fee schedule bound to the market (what fills pay), else the venue's own."""
        if getattr(ctx.market, "fees", None) is not None:
            return ctx.market.fee_schedule(instrument_id)
        return option_fees(self.s)

    def _limit(self, touch: float, side: Side) -> Decimal:
        """An IOC leg's limit: ``limit_ticks`` past the touch, never below one tick."""
        slack = Decimal(TICK_PER_CONTRACT) * self.s.limit_ticks
        px = Decimal(repr(touch)) + (slack if side is Side.BUY else -slack)
        return max(px, Decimal(TICK_PER_CONTRACT))

    def _skip(self, und: str, why: str) -> list[Intent]:
        self.last_decision[und] = why
        return []

    def _chain(self, und: str, today: int, market: Any) -> tuple[int, list[Any]] | None:
        """Today's quoted puts of the expiry closest to ``target_dte`` (>= ``min_dte``)."""
        by_exp: dict[int, list[Any]] = {}
        prefix = f"{VENUE}:{und}-"
        now = market.now_ns
        for inst_id, book in market.books.items():
            if not inst_id.startswith(prefix) or book.ts_ns != now or not book.live:
                continue
            c = PutContract.parse(inst_id)
            dte = c.expiry.toordinal() - today
            if self.s.min_dte <= dte <= self.s.max_dte:
                by_exp.setdefault(dte, []).append((c, book))
        if not by_exp:
            return None
        dte = min(by_exp, key=lambda d: (abs(d - self.s.target_dte), d))
        return dte, sorted(by_exp[dte], key=lambda x: x[0].strike)

    def _iv(self, item: tuple[PutContract, Any], s: float, t: float) -> float | None:
        """Implied vol of the book's mid; None for a one-sided, crossed or locked book."""
        c, book = item
        touch = _two_sided(book)
        if touch is None:
            return None
        return implied_vol_put(0.5 * (touch[0] + touch[1]) / MULTIPLIER, s, c.strike, t,
                               self.s.rate)

    def _pick_short(self, strikes: list[Any], s: float, t: float, ctx: StrategyContext,
                    atm_iv: float) -> tuple[PutContract, Any, str] | None:
        """The OTM put closest to the selection target, and how it scored (for the reason)."""
        otm = [x for x in strikes if x[0].strike < s and x[0].strike - self.s.width > 0]
        scored = []
        for item in otm:
            iv = self._iv(item, s, t)
            if iv is None:
                continue
            if self.s.selection == "delta":
                d = abs(float(bs_put_delta(s, item[0].strike, t, self.s.rate, iv)))
                scored.append((abs(d - self.s.short_delta), item, f"|delta| {d:.3f}"))
            else:
                got = self.pop(item, strikes, s, t, iv, atm_iv, ctx)
                if got is not None:
                    pop, method = got
                    scored.append((abs(pop - self.s.target_pop), item,
                                   f"PoP {pop:.3f} ({method})"))
        if not scored:
            return None
        _dist, (contract, book), score = min(scored, key=lambda x: (x[0], -x[1][0].strike))
        return contract, book, score

    def pop(self, item: tuple[PutContract, Any], strikes: list[Any], s: float, t: float,
            iv: float, atm_iv: float, ctx: StrategyContext) -> tuple[float, str] | None:
        """``(probability that the spread with short leg ``item`` makes money at expiry,
        method)``: P(S_T > short strike - credit per share).

        With the ``heston`` pricer (``argus-gpu-heston``) it is Heston Monte Carlo with
        ``v0 = theta = atm_iv^2`` -- the skew then comes from ``heston_rho``, not from the
        strike's own vol; without it, lognormal at the short strike's implied vol.  Both
        are risk-neutral (drift = ``rate``).
        """
        c, book = item
        long_k = c.strike - self.s.width
        longs = [x for x in strikes if abs(x[0].strike - long_k) < 1e-9]
        if not longs or book.best_bid() is None or longs[0][1].best_ask() is None:
            return None
        credit = (book.best_bid() - longs[0][1].best_ask()) / MULTIPLIER  # per share
        if credit <= 0:
            return None
        pricer = ctx.pricers.get(HESTON)
        if pricer is not None and pricer.supports("probability_of_profit"):
            return self._heston_pop(pricer, c.strike, long_k, s, t, atm_iv, credit), HESTON
        return lognormal_pop(s, c.strike - credit, t, iv, self.s.rate), "lognormal"

    def _heston_pop(self, pricer: Pricer, short_k: float, long_k: float, s: float, t: float,
                    atm_iv: float, credit: float) -> float:
        """P(profit) of the spread from the pricer, through the core's pricer protocol
        only: Heston parameters by name, ``v0 = theta = atm_iv^2``."""
        v = atm_iv * atm_iv
        model = {"v0": v, "kappa": self.s.heston_kappa, "theta": v,
                 "sigma": self.s.heston_sigma, "rho": self.s.heston_rho}
        legs = [OptionLeg("put", short_k, -1.0), OptionLeg("put", long_k, 1.0)]
        res = pricer.probability_of_profit(legs, s, t, credit, rate=self.s.rate, model=model,
                                           paths=self.s.heston_paths, seed=0)
        if res.p_profit is None:
            raise ValueError(f"pricer {pricer.name!r} answered probability_of_profit "
                             f"without p_profit")
        return float(res.p_profit)


def _two_sided(book: Any) -> tuple[float, float] | None:
    """(bid, ask) of a book quoted on both sides with ask > bid; None otherwise.

    A crossed or locked book is stale or bad data: its mid is no price, and selling at
    such a bid books a credit (and sizes a play) the market never offered.
    """
    bid, ask = book.best_bid(), book.best_ask()
    if bid is None or ask is None or not ask > bid:
        return None
    return bid, ask


def _day_of(ts_ns: int) -> int:
    """Proleptic ordinal of the UTC date of ``ts_ns``."""
    return dt.datetime.fromtimestamp(ts_ns // 1_000_000_000, tz=dt.UTC).date().toordinal()


def _date_of(day: int) -> str:
    return dt.date.fromordinal(day).isoformat()


def _known(value: object) -> bool:
    """A published signal that is a finite number."""
    return isinstance(value, (int, float)) and math.isfinite(value)


#: Keys of an open spread in the state, and the types a checkpoint may hold for them.
_SPREAD_KEYS: dict[str, tuple[type, ...]] = {"short": (str,), "long": (str,),
                                             "basket": (str,), "opened_ns": (int,),
                                             "credit": (int, float), "contracts": (int,)}


def _checked_spread(und: object, spread: object) -> dict[str, Any]:
    """One open spread of a restored state, its legs parseable and values typed."""
    if not isinstance(spread, Mapping):
        raise TypeError(f"{STRATEGY} state: open spread of {und!r} must be a table, got "
                        f"{type(spread).__name__}")
    for key in ("short", "long"):
        if key not in spread:
            raise ValueError(f"{STRATEGY} state: open spread of {und!r} has no {key!r} leg")
    out = copy.deepcopy(dict(spread))
    for key, kinds in _SPREAD_KEYS.items():
        if key in out and (isinstance(out[key], bool) or not isinstance(out[key], kinds)
                           or (key == "credit" and not math.isfinite(out[key]))):
            raise ValueError(f"{STRATEGY} state: open spread of {und!r} has {key} = "
                             f"{out[key]!r}")
    for key in ("short", "long"):
        try:
            PutContract.parse(out[key])
        except DataError as exc:
            raise ValueError(f"{STRATEGY} state: open spread of {und!r}: {exc}") from None
    return out
