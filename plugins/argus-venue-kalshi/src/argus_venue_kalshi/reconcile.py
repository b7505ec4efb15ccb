"""Kalshi's settlements of this account against a run's ledger.

Kalshi pays settled positions out and lists each in ``GET /portfolio/settlements``
(``ticker``, ``market_result``, ``yes_count_fp`` / ``no_count_fp``, ``revenue`` in
cents).  The run's ledger books a settlement as a fill with liquidity ``settlement``
per instrument.  :func:`reconcile_settlements` compares the two for every market the run
traded and reports each difference:

* ``missing``: Kalshi settled a position the run held there, the ledger booked none;
* ``extra``: the ledger booked a settlement Kalshi does not list;
* ``different``: both did, with other contract counts or another payout (compared to
  the cent: Kalshi rounds a payout to whole cents).

Markets the run never traded are not compared (the account may trade outside it).  The
ledger is read through a read-only ``apsw`` connection, never written.

Kalshi's list is read from the run's first Kalshi fill on (:func:`ledger_since_s`, less
:data:`SINCE_SLACK_S`): a market the run traded settled after the run traded it, so
older settlements (an account's years of them) are never read.  Before, the account's
whole settlement list was read every time.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import apsw
import attrs

from argus_core import LEDGER_FILE, DataError, LedgerError, check_run_ledger, read_untouched
from argus_venue_kalshi import constants as C
from argus_venue_kalshi.instruments import parse_instrument_id
from argus_venue_kalshi.schemas import count, dec

_TOLERANCE = Decimal("0.01")
#: How far before the run's first fill Kalshi's settlements are read (seconds): clock
#: differences between the ledger's times and Kalshi's ``settled_time``, with room.
SINCE_SLACK_S = 86_400


@attrs.frozen
class SettledMarket:
    """One market's settlement as a side saw it: contracts settled per side ("yes" /
    "no") and the payout in dollars."""

    ticker: str
    yes: Decimal = Decimal(0)
    no: Decimal = Decimal(0)
    payout: Decimal = Decimal(0)


@attrs.frozen
class SettlementDifference:
    """One difference between Kalshi's settlements and the ledger's (``kind``:
    "missing", "extra" or "different"); ``kalshi`` / ``ledger`` are each side's view."""

    ticker: str
    kind: str
    kalshi: SettledMarket | None
    ledger: SettledMarket | None

    def describe(self) -> str:
        """One line naming the market and both sides' counts and payouts."""
        def view(s: SettledMarket | None) -> str:
            return "none" if s is None else f"YES {s.yes} NO {s.no} paid ${s.payout}"
        return f"{self.ticker}: {self.kind}: kalshi {view(self.kalshi)}; " \
               f"ledger {view(self.ledger)}"


def kalshi_settled(settlements: Iterable[dict[str, Any]]) -> dict[str, SettledMarket]:
    """Kalshi's ``GET /portfolio/settlements`` objects by ticker (the newest of a ticker
    listed twice: an amended result is listed again); payout from ``revenue`` (cents)."""
    out: dict[str, SettledMarket] = {}
    for raw in settlements:  # newest first, as Kalshi lists them
        ticker = raw.get("ticker")
        if not isinstance(ticker, str) or not ticker:
            raise DataError(f"kalshi: settlement without a ticker: {sorted(raw)}")
        if ticker in out:
            continue
        revenue = raw.get("revenue")
        if revenue is None:
            raise DataError(f"kalshi: settlement of {ticker} has no revenue")
        out[ticker] = SettledMarket(ticker, count(raw, "yes_count", default=Decimal(0)),
                                    count(raw, "no_count", default=Decimal(0)),
                                    dec(revenue, f"{ticker} revenue") * C.CENT)
    return out


def ledger_settled(run_dir: Path) -> tuple[dict[str, SettledMarket], set[str]]:
    """(the ledger's Kalshi settlements by ticker, every Kalshi ticker the run traded),
    read from ``run_dir``'s ledger without writing to it."""
    path = Path(run_dir) / LEDGER_FILE
    if "fills" not in check_run_ledger(run_dir, "pass the run directory of the Kalshi run"):
        raise LedgerError(f"{path} cannot be used: not an Argus ledger (it has no fills "
                          f"table)")
    try:
        # (a finished run's folder is left as it was: no -wal or -shm file made there)
        rows = read_untouched(path, lambda conn: list(conn.execute(
            "select instrument_id, side, price, quantity, liquidity from fills "
            "where venue = ? or instrument_id like ?", (C.VENUE, f"{C.VENUE}:%"))))
    except apsw.Error as exc:
        raise LedgerError(f"{path} cannot be used: {type(exc).__name__}: {exc} (a damaged "
                          f"file, or not an Argus ledger)") from None
    traded: set[str] = set()
    settled: dict[str, SettledMarket] = {}
    for instrument, side, price, quantity, liquidity in rows:
        try:
            ticker, contract = parse_instrument_id(instrument)
        except ValueError:
            continue
        traded.add(ticker)
        if liquidity != "settlement":
            continue
        qty = Decimal(quantity) * (1 if side == "sell" else -1)  # a long closes by selling
        seen = settled.get(ticker, SettledMarket(ticker))
        settled[ticker] = attrs.evolve(
            seen, payout=seen.payout + qty * Decimal(price),
            **{contract: getattr(seen, contract) + qty})
    return settled, traded


def ledger_since_s(run_dir: Path) -> int | None:
    """Unix seconds from which Kalshi's settlements can concern ``run_dir``'s run: its
    first Kalshi fill less :data:`SINCE_SLACK_S`; None when it has no Kalshi fill (then
    nothing of Kalshi's needs reading: no market was traded)."""
    path = Path(run_dir) / LEDGER_FILE
    check_run_ledger(run_dir, "pass the run directory of the Kalshi run")
    try:
        ((first,),) = read_untouched(path, lambda conn: list(conn.execute(
            "select min(ts_ns) from fills where venue = ? or instrument_id like ?",
            (C.VENUE, f"{C.VENUE}:%"))))
    except apsw.Error as exc:
        raise LedgerError(f"{path} cannot be used: {type(exc).__name__}: {exc} (a damaged "
                          f"file, or not an Argus ledger)") from None
    if first is None:
        return None
    return max(0, int(first) // 10**9 - SINCE_SLACK_S)


def reconcile_settlements(kalshi: dict[str, SettledMarket], ledger: dict[str, SettledMarket],
                          traded: set[str]) -> list[SettlementDifference]:
    """Every difference, by ticker, over the markets the run traded (see the module)."""
    out = []
    for ticker in sorted(traded | set(ledger)):
        theirs, ours = kalshi.get(ticker), ledger.get(ticker)
        if theirs is not None and not (theirs.yes or theirs.no or theirs.payout):
            theirs = None if ours is None else theirs  # nothing held: nothing to book
        if theirs is None and ours is None:
            continue
        if ours is None:
            out.append(SettlementDifference(ticker, "missing", theirs, None))
        elif theirs is None:
            out.append(SettlementDifference(ticker, "extra", None, ours))
        elif (theirs.yes, theirs.no) != (ours.yes, ours.no) or \
                abs(theirs.payout - ours.payout) >= _TOLERANCE:
            out.append(SettlementDifference(ticker, "different", theirs, ours))
    return out


async def reconcile_run(venue: Any, run_dir: Path) -> list[SettlementDifference]:
    """Read ``venue``'s account settlements (``KalshiVenue.execution.settlements()``) and
    compare them with ``run_dir``'s ledger."""
    ledger, traded = ledger_settled(run_dir)
    since = ledger_since_s(run_dir)
    kalshi = {} if since is None and not ledger else kalshi_settled(
        await venue.execution.settlements(min_ts=since))
    return reconcile_settlements(kalshi, ledger, traded)
