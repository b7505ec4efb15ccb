"""Transaction-cost analysis of a run's orders, from its ledger.

Every ``orders`` row records the price its decision was made at (``decision_price``)
and the market when it was sent (``arrival_price``: a live two-sided book's mid, else
the last bar's close; ``arrival_spread``: ask - bid, NULL without a book).  Against
those, with ``s`` = +1 for a buy and -1 for a sell, ``Q`` the filled quantity and
``N`` the filled notional (sum of fill price x quantity, so ``N = VWAP x Q``):

* **spread paid** ``s x (N - arrival x Q)`` (quote currency) and in bps of the arrival
  notional ``arrival x Q``; measured only against a book's mid (an order sent with a
  quoted spread), None for an order measured against a bar's close;
* **slippage** ``s x (VWAP / arrival - 1) x 10^4`` bps, for every filled order (equal to
  the spread paid in bps when arrival is a mid);
* **implementation shortfall** ``s x (N - decision x Q) + fees`` (quote currency), in
  bps of ``decision x Q``.  The unfilled remainder is *not* charged (no opportunity
  cost: there is no agreed price to charge it at); it is reported as
  ``unfilled_quantity`` beside the shortfall of what did fill.

Money (notional, fees, spread paid, shortfall) is summed exactly in ``Decimal``; bps and
their means and standard deviations are floats.  Settlement fills (a market resolving)
are not executions and are left out.  A busted fill is offset in the ledger by a fill
``<fill id>:bust`` on the *other* side of the same order (its fee refunded): quantities
and notionals are summed signed by the order's side, so the bust takes back what the
trade added, and neither the busted fill nor its offset is a slippage sample.

The ledger is read through a read-only apsw connection, safe beside a running writer.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import apsw
import attrs

from argus_core import LEDGER_FILE, ConfigError, LedgerError, Side, bust_id, read_untouched

_BPS = 10_000.0
_SETTLEMENT = "settlement"


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def side_sign(side: str | Side) -> int:
    """+1 for a buy, -1 for a sell (costs are positive when they hurt the trader)."""
    return Side(side).sign


def slippage_bps(side: str | Side, price: Decimal, arrival: Decimal) -> float:
    """Side-signed ``(price / arrival - 1) x 10^4``: positive when ``price`` is worse for
    the trader than the arrival price."""
    return float(side_sign(side) * (price / arrival - 1)) * _BPS


def half_spread_bps(arrival: Decimal, spread: Decimal | None) -> float | None:
    """The quoted half-spread at arrival in bps of the mid (None without a quote)."""
    if spread is None or arrival <= 0:
        return None
    return float(spread / 2 / arrival) * _BPS


def utc_day(ts_ns: int) -> str:
    """``YYYY-MM-DD`` (UTC) of a timestamp in ns.  Whole seconds by integer division: the
    float ``ts_ns / 1e9`` rounded an order sent in the last ~120 ns before midnight up
    to the next day, and rolled it up under that day."""
    return datetime.fromtimestamp(ts_ns // 10**9, UTC).strftime("%Y-%m-%d")


@attrs.frozen
class OrderCost:
    """The costs of one order (see the module docstring for each formula)."""

    client_order_id: str
    strategy: str
    instrument_id: str
    side: str
    ts_ns: int
    reason: str
    quantity: Decimal
    filled_quantity: Decimal
    notional: Decimal
    fees: Decimal
    maker_quantity: Decimal
    taker_quantity: Decimal
    decision_price: Decimal | None
    arrival_price: Decimal | None
    arrival_spread: Decimal | None
    vwap: Decimal | None
    spread_paid: Decimal | None
    spread_paid_bps: float | None
    slippage_bps: float | None
    shortfall: Decimal | None
    shortfall_bps: float | None

    @property
    def unfilled_quantity(self) -> Decimal:
        """What the order asked for and did not get (not charged in the shortfall)."""
        return max(self.quantity - self.filled_quantity, Decimal(0))

    @property
    def day(self) -> str:
        """The UTC day the order was sent (the day it is rolled up under)."""
        return utc_day(self.ts_ns)


@attrs.frozen
class FillSlippage:
    """One fill's slippage against its order's arrival price."""

    fill_id: str
    strategy: str
    instrument_id: str
    liquidity: str
    ts_ns: int
    slippage_bps: float
    #: the quoted half-spread at arrival (None: measured against a bar's close)
    half_spread_bps: float | None

    def beyond_spread_bps(self, bar_half_spread_bps: float) -> float:
        """Slippage beyond the half-spread: the quoted one when the order was sent into a
        book, else ``bar_half_spread_bps`` (what a bar replay's synthetic book charges).
        This is the part ``[paper] slippage_bps`` models."""
        half = self.half_spread_bps if self.half_spread_bps is not None \
            else bar_half_spread_bps
        return self.slippage_bps - half


@attrs.frozen
class DailyRollup:
    """One UTC day of one strategy on one instrument."""

    day: str
    strategy: str
    instrument_id: str
    orders: int
    filled_orders: int
    filled_quantity: Decimal
    notional: Decimal
    fees: Decimal
    spread_paid: Decimal
    shortfall: Decimal
    #: total shortfall over the total decision notional of the filled quantity
    shortfall_bps: float | None
    #: mean and sample standard deviation of the orders' slippage (each order once)
    mean_slippage_bps: float | None
    std_slippage_bps: float | None


def _bps_of(amount: Decimal, base: Decimal) -> float | None:
    return float(amount / base) * _BPS if base > 0 else None


def order_costs(orders: Iterable[dict[str, Any]], fills: Iterable[dict[str, Any]]
                ) -> list[OrderCost]:
    """The costs of every order (ledger rows of ``orders`` and ``fills``), by send time."""
    by_order: dict[str, list[dict[str, Any]]] = {}
    for f in fills:
        if f["liquidity"] != _SETTLEMENT:
            by_order.setdefault(f["client_order_id"], []).append(f)
    out = []
    for o in sorted(orders, key=lambda r: (r["ts_ns"], r["client_order_id"])):
        own = by_order.get(o["client_order_id"], [])
        if o["strategy"] == _SETTLEMENT and not own:
            continue  # a settlement's order row, not a trading decision
        out.append(_order_cost(o, own))
    return out


def is_offset(fill_side: str | Side, order_side: str | Side) -> bool:
    """True for a fill on the other side of its order: the core's offset of a busted fill
    (``<fill id>:bust``), which takes the trade back rather than adding one."""
    return Side(fill_side) is not Side(order_side)


def _along(f: dict[str, Any], order_side: str) -> Decimal:
    """The fill's quantity signed by its order's side (a bust's offset counts negative)."""
    qty = Decimal(f["quantity"])
    return -qty if is_offset(f["side"], order_side) else qty


def _order_cost(o: dict[str, Any], own: Sequence[dict[str, Any]]) -> OrderCost:
    sign = side_sign(o["side"])
    qty = sum((_along(f, o["side"]) for f in own), Decimal(0))
    notional = sum((Decimal(f["price"]) * _along(f, o["side"]) for f in own), Decimal(0))
    fees = sum((Decimal(f["fee"]) for f in own), Decimal(0))
    maker = sum((_along(f, o["side"]) for f in own if f["liquidity"] == "maker"),
                Decimal(0))
    decision, arrival = _dec(o.get("decision_price")), _dec(o.get("arrival_price"))
    spread = _dec(o.get("arrival_spread"))
    vwap = notional / qty if qty > 0 else None
    spread_paid = spread_bps = slip = shortfall = shortfall_bps = None
    if vwap is not None and arrival is not None and arrival > 0:
        slip = slippage_bps(o["side"], vwap, arrival)
        if spread is not None:  # arrival was a book's mid
            spread_paid = sign * (notional - arrival * qty)
            spread_bps = _bps_of(spread_paid, arrival * qty)
    if vwap is not None and decision is not None and decision > 0:
        shortfall = sign * (notional - decision * qty) + fees
        shortfall_bps = _bps_of(shortfall, decision * qty)
    return OrderCost(
        o["client_order_id"], o["strategy"], o["instrument_id"], o["side"], o["ts_ns"],
        o.get("reason") or "", Decimal(o["quantity"]), qty, notional, fees, maker,
        qty - maker, decision, arrival, spread, vwap, spread_paid, spread_bps, slip,
        shortfall, shortfall_bps)


def fill_slippages(orders: Iterable[dict[str, Any]], fills: Iterable[dict[str, Any]]
                   ) -> list[FillSlippage]:
    """Every maker or taker fill's slippage against its order's arrival price (fills
    whose order recorded no arrival price are left out, and so are busted fills and their
    offsets: the trade did not happen), in time order."""
    by_id = {o["client_order_id"]: o for o in orders}
    fills = list(fills)
    ids = {str(f["fill_id"]) for f in fills}
    out = []
    for f in sorted(fills, key=lambda r: (r["ts_ns"], r["fill_id"])):
        o = by_id.get(f["client_order_id"])
        arrival = _dec(o.get("arrival_price")) if o else None
        if o is None or arrival is None or arrival <= 0 or f["liquidity"] == _SETTLEMENT \
                or is_offset(f["side"], o["side"]) or bust_id(f["fill_id"]) in ids:
            continue
        out.append(FillSlippage(
            f["fill_id"], o["strategy"], f["instrument_id"], f["liquidity"], f["ts_ns"],
            slippage_bps(f["side"], Decimal(f["price"]), arrival),
            half_spread_bps(arrival, _dec(o.get("arrival_spread")))))
    return out


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (None where undefined)."""
    if not values:
        return None, None
    mean = math.fsum(values) / len(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else None)


def daily_rollups(costs: Iterable[OrderCost]) -> list[DailyRollup]:
    """Per UTC day (of each order's send time), strategy and instrument."""
    groups: dict[tuple[str, str, str], list[OrderCost]] = {}
    for c in costs:
        groups.setdefault((c.day, c.strategy, c.instrument_id), []).append(c)
    out = []
    for (day, strategy, iid), group in sorted(groups.items()):
        filled = [c for c in group if c.filled_quantity > 0]
        zero = Decimal(0)
        shortfall = sum((c.shortfall for c in filled if c.shortfall is not None), zero)
        decision_notional = sum((c.decision_price * c.filled_quantity for c in filled
                                 if c.decision_price is not None and c.shortfall is not None),
                                zero)
        mean, std = mean_std([c.slippage_bps for c in filled if c.slippage_bps is not None])
        out.append(DailyRollup(
            day, strategy, iid, len(group), len(filled),
            sum((c.filled_quantity for c in group), zero),
            sum((c.notional for c in group), zero), sum((c.fees for c in group), zero),
            sum((c.spread_paid for c in group if c.spread_paid is not None), zero),
            shortfall, _bps_of(shortfall, decision_notional), mean, std))
    return out


@attrs.frozen
class RunLedger:
    """What TCA reads from one run directory: its order and fill rows and its config."""

    run_dir: Path
    orders: list[dict[str, Any]]
    fills: list[dict[str, Any]]
    config: dict[str, Any]

    def paper(self, key: str, default: str) -> Decimal:
        """A ``[paper]`` setting of the run's config (the default when unset)."""
        return Decimal(str(self.config.get("paper", {}).get(key, default)))


def read_run(run_dir: Path) -> RunLedger:
    """Read a run's orders, fills and config through a read-only connection."""
    path = Path(run_dir) / LEDGER_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no run ledger ({LEDGER_FILE}) in this directory")

    def read(conn: apsw.Connection) -> tuple[list[dict[str, Any]], ...]:
        with conn:  # one read transaction: orders and fills of the same commit
            columns = {r[1] for r in conn.execute("pragma table_info(orders)")}
            if "arrival_price" not in columns:
                raise LedgerError(f"{path}: this ledger predates order costs (no "
                                  f"arrival_price column); run it again with a current argus")
            tables = (_rows(conn, "select * from orders"), _rows(conn, "select * from fills"),
                      _rows(conn, "select config_json from runs order by started_ns desc "
                                  "limit 1"))
        return tables

    try:
        orders, fills, runs = read_untouched(path, read)
    except apsw.Error as exc:
        raise LedgerError(f"{path}: cannot read the ledger: {exc}") from None
    for table, rows in (("orders", orders), ("fills", fills)):
        for row in rows:
            _check_row(path, table, row)
    try:
        config = json.loads(runs[0]["config_json"]) if runs else {}
        paper = config.get("paper", {}) if isinstance(config, dict) else None
        if not isinstance(paper, dict):
            raise ValueError("its [paper] is not a table")
        bar = paper.get("bar_spread_bps")
        if bar is not None:
            _finite_decimal(bar)
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise LedgerError(f"{path}: the run's stored config cannot be read ({exc}): a "
                          f"damaged or hand-edited ledger") from None
    return RunLedger(Path(run_dir), orders, fills, config)


#: Columns TCA reads from each table: (column, kind, may be NULL).
_COLUMNS = {
    "orders": (("client_order_id", "text", False), ("strategy", "text", False),
               ("instrument_id", "text", False), ("side", "side", False),
               ("ts_ns", "int", False), ("quantity", "amount", False),
               ("decision_price", "amount", True), ("arrival_price", "amount", True),
               ("arrival_spread", "amount", True)),
    "fills": (("fill_id", "text", False), ("client_order_id", "text", False),
              ("instrument_id", "text", False), ("side", "side", False),
              ("ts_ns", "int", False), ("price", "amount", False),
              ("quantity", "amount", False), ("fee", "amount", False),
              ("liquidity", "liquidity", False)),
}


def _finite_decimal(value: Any) -> Decimal:
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        raise ValueError("not a decimal number") from None
    if not number.is_finite():
        raise ValueError("not a finite number")
    return number


def _check_row(path: Path, table: str, row: dict[str, Any]) -> None:
    """Refuse a row TCA cannot read with a :class:`LedgerError` naming the file, the
    table, the row and the column (a damaged price was a traceback:
    ``InvalidOperation [<class 'decimal.ConversionSyntax'>]``; a NaN fee printed NaN)."""
    key = row.get("fill_id" if table == "fills" else "client_order_id")
    for column, kind, nullable in _COLUMNS[table]:
        value = row.get(column)
        if value is None and nullable:
            continue
        try:
            if value is None:
                raise ValueError("missing")
            if kind == "amount":
                _finite_decimal(value)
            elif kind == "int":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError("not a whole number of ns")
                utc_day(value)  # a stamp no calendar holds is refused here, not in a table
            elif kind == "side":
                Side(value)
            elif kind == "liquidity":
                if value not in ("maker", "taker", _SETTLEMENT):
                    raise ValueError("none of maker / taker / settlement")
            elif not isinstance(value, str):
                raise ValueError("not text")
        except (ValueError, TypeError, ArithmeticError, OverflowError, OSError) as exc:
            raise LedgerError(f"{path}: a damaged {table} row ({key!r}): {column} = "
                              f"{str(value)[:40]!r} cannot be read ({exc}); TCA cannot "
                              f"cost this run") from None


def _rows(conn: apsw.Connection, sql: str) -> list[dict[str, Any]]:
    cursor = conn.execute(sql)
    try:
        names = [d[0] for d in cursor.getdescription()]
    except apsw.ExecutionCompleteError:
        return []
    return [dict(zip(names, row, strict=True)) for row in cursor]


def jsonable(record: Any) -> dict[str, Any]:
    """An attrs record as JSON-able data (Decimals as exact strings)."""
    def value(v: Any) -> Any:
        return str(v) if isinstance(v, Decimal) else v
    data = {k: value(v) for k, v in attrs.asdict(record, recurse=False).items()}
    if isinstance(record, OrderCost):
        data["unfilled_quantity"] = str(record.unfilled_quantity)
        data["day"] = record.day
    return data


@attrs.frozen
class Calibration:
    """Measured slippage, ready to feed back into the replay's cost model.

    ``slippage_bps`` is the mean, over taker fills, of the slippage beyond the half-spread
    (:meth:`FillSlippage.beyond_spread_bps`, each run's own ``[paper] bar_spread_bps``
    standing in where no spread was quoted): exactly what ``[paper] slippage_bps`` adds
    on top of the book (or a bar replay's synthetic half-spread), at ``cost_multiplier``
    1.  Price improvement (a negative mean) is written as 0, the smallest value the
    setting takes.
    """

    slippage_bps: float
    measured_bps: float
    stderr_bps: float
    std_bps: float
    taker_fills: int
    maker_fills: int
    maker_mean_bps: float | None
    maker_stderr_bps: float | None
    #: mean quoted half-spread of the taker fills sent into a book (None: none were)
    quoted_half_spread_bps: float | None
    runs: tuple[str, ...]

    @property
    def value(self) -> str:
        """The ``[paper] slippage_bps`` value as written (bps to 0.01)."""
        return f"{max(self.slippage_bps, 0.0):.2f}"

    def toml(self) -> str:
        """A ``[paper]`` TOML snippet with the calibrated value and where it came from."""
        lines = ["[paper]",
                 f'slippage_bps = "{self.value}"  # measured {self.measured_bps:.2f} bps '
                 f"beyond the half-spread, SE {self.stderr_bps:.2f} bps, "
                 f"{self.taker_fills} taker fills"]
        if self.quoted_half_spread_bps is not None:
            lines.append(f"# quoted half-spread at arrival: {self.quoted_half_spread_bps:.2f}"
                         f" bps (a bar replay charges bar_spread_bps in its place)")
        if self.maker_fills:
            lines.append(f"# maker fills: {self.maker_fills}, mean "
                         f"{_fmt(self.maker_mean_bps)} bps vs arrival (SE "
                         f"{_fmt(self.maker_stderr_bps)}; the replay charges makers no "
                         f"slippage)")
        return "\n".join(lines) + "\n"

    def set_line(self) -> str:
        """The equivalent ``--set`` override for ``argus backtest`` / ``argus run``."""
        return f"--set paper.slippage_bps={self.value}"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def calibrate(runs: Sequence[RunLedger], min_fills: int = 30) -> Calibration:
    """Measure realised slippage over the taker fills of ``runs`` (see
    :class:`Calibration`); refuses with a :class:`argus_core.ConfigError` naming the
    count when there are fewer than ``min_fills`` of them."""
    if min_fills < 2:
        raise ConfigError(f"min_fills = {min_fills}: a standard error needs at least 2 fills")
    taker: list[float] = []
    maker: list[float] = []
    quoted: list[float] = []
    for run in runs:
        bar_half = float(run.paper("bar_spread_bps", "2"))
        for f in fill_slippages(run.orders, run.fills):
            if f.liquidity == "maker":
                maker.append(f.slippage_bps)
            elif f.liquidity == "taker":
                taker.append(f.beyond_spread_bps(bar_half))
                if f.half_spread_bps is not None:
                    quoted.append(f.half_spread_bps)
    names = tuple(str(r.run_dir) for r in runs)
    if len(taker) < min_fills:
        raise ConfigError(
            f"too few taker fills to calibrate slippage: {len(taker)} in "
            f"{', '.join(names)}; at least {min_fills} are needed (--min-fills) for a "
            f"standard error worth feeding back")
    mean, std = mean_std(taker)
    assert mean is not None and std is not None  # len(taker) >= min_fills >= 2
    maker_mean, maker_std = mean_std(maker)
    maker_se = maker_std / math.sqrt(len(maker)) if maker_std is not None else None
    return Calibration(
        max(mean, 0.0), mean, std / math.sqrt(len(taker)), std, len(taker), len(maker),
        maker_mean, maker_se, mean_std(quoted)[0], names)
