"""The ``argus tca`` commands (entry point group ``argus.commands``: imported only when
one runs).

* ``argus tca RUN_DIR [--daily] [--json]``: each order's costs (or the daily roll-ups);
* ``argus tca-calibrate RUN_DIR [RUN_DIR...] [--out FILE] [--min-fills N]``: the
  ``[paper] slippage_bps`` that reproduces the runs' measured slippage in a replay.
* ``argus league reference | events | books RUN_DIR``.

A RUN_DIR that is not one (missing, no ``argus.db``, a damaged or foreign file) is the
core's ``LedgerError`` naming the path and what is wrong (exit 7, as ``argus report``);
every refusal is one ``error:`` line with its class's exit code (click's ``Error:``, exit
1, before).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import apsw
import click

from argus_core import LEDGER_FILE, LedgerError, PluginCommand, PluginGroup, check_run_ledger

#: What to pass instead of a directory without a run ledger.
_HINT = "pass the run directory `argus run` or `argus backtest` printed"


def _known_book(run_dir: Path, slot: str) -> None:
    """A usage error naming ``--slot`` when the run kept books and none is ``slot`` (a run
    of one book has none: its account's equity is every slot's)."""

    from argus_portfolio.book_series import book_table, read_with_path

    def slots(conn: apsw.Connection) -> list[str]:
        table = book_table(conn)  # None: no book rows kept
        return [] if table is None else sorted(
            str(s) for (s,) in conn.execute(f"select distinct slot from {table}"))

    books = read_with_path(Path(run_dir) / LEDGER_FILE, slots)
    if books and slot not in books:
        raise click.BadParameter(f"no book named {slot!r} in {run_dir} (books: "
                                 f"{', '.join(books)})", click.get_current_context(),
                                 param_hint="'--slot'")


def _num(value: Decimal | float | None, places: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{places}f}"


def _price(value: Decimal | float | None) -> str:
    """A price to two places, or to four significant digits below 1: a prediction
    market's 0.003 must not print as 0.00."""
    if value is None:
        return "-"
    return f"{value:.2f}" if abs(float(value)) >= 1 else f"{value:.4g}"


def _utc(ts_ns: int, where: str = "") -> str:
    """A ledger time (ns) as the UTC time a person reads (the raw ns was printed); a
    stamp that is no time (a damaged row) is a :class:`LedgerError` naming ``where``."""
    try:
        if isinstance(ts_ns, bool) or not isinstance(ts_ns, int):
            raise TypeError("not a whole number")
        when = dt.datetime.fromtimestamp(ts_ns // 10**9, dt.UTC)
    except (TypeError, ValueError, OverflowError, OSError) as exc:
        raise LedgerError(f"{where or 'the ledger'}: ts_ns {str(ts_ns)[:30]!r} is no time "
                          f"({exc}): a damaged row") from None
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


def _writable(out: Path | None) -> None:
    """A usage error naming ``--out`` when its folder does not exist (refused before any
    work: it failed after the measurement, naming no option)."""
    if out is not None and not out.parent.is_dir():
        raise click.BadParameter(f"folder '{out.parent}' does not exist",
                                 param_hint="'--out'")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


@click.command("tca", cls=PluginCommand)
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--daily", is_flag=True, help="Daily (UTC) roll-ups per strategy and "
                                             "instrument instead of one line per order.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (money as exact strings).")
def tca(run_dir: Path, daily: bool, as_json: bool) -> None:
    """Transaction-cost analysis of a run: per order, the filled quantity, VWAP, fees,
    spread paid, slippage vs arrival and implementation shortfall vs decision price."""
    from argus_portfolio.tca import daily_rollups, jsonable, order_costs, read_run

    check_run_ledger(run_dir, _HINT)
    run = read_run(run_dir)
    costs = order_costs(run.orders, run.fills)
    records: list[Any] = list(daily_rollups(costs)) if daily else list(costs)
    if as_json:
        click.echo(json.dumps([jsonable(r) for r in records], indent=1))
        return
    if not records:
        click.echo(f"{run_dir}: no orders")
        return
    if daily:
        click.echo(_table(
            ["day", "strategy", "instrument", "orders", "filled", "notional", "fees",
             "shortfall", "shortfall_bps", "slip_mean_bps", "slip_std_bps"],
            [[r.day, r.strategy, r.instrument_id, str(r.orders), str(r.filled_orders),
              _num(r.notional), _num(r.fees), _num(r.shortfall), _num(r.shortfall_bps),
              _num(r.mean_slippage_bps), _num(r.std_slippage_bps)] for r in records]))
        return
    click.echo(_table(
        ["day", "order", "strategy", "side", "filled/qty", "vwap", "fees", "spread_bps",
         "slip_bps", "shortfall", "shortfall_bps"],
        [[c.day, c.client_order_id, c.strategy, c.side, f"{c.filled_quantity}/{c.quantity}",
          _price(c.vwap), _num(c.fees), _num(c.spread_paid_bps), _num(c.slippage_bps),
          _num(c.shortfall), _num(c.shortfall_bps)] for c in records]))


@click.command("tca-calibrate", cls=PluginCommand)
@click.argument("run_dirs", nargs=-1, required=True,
                type=click.Path(path_type=Path, file_okay=False))
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write the [paper] TOML snippet to this file.")
@click.option("--min-fills", default=30, show_default=True, type=click.IntRange(2),
              help="Refuse with fewer taker fills than this.")
def tca_calibrate(run_dirs: tuple[Path, ...], out: Path | None, min_fills: int) -> None:
    """Measure realised slippage in live / paper runs and print the replay's
    ``[paper] slippage_bps`` that reproduces it (a TOML snippet and a --set line)."""
    from argus_portfolio.tca import calibrate, read_run

    _writable(out)  # it failed after printing, exit 1
    for run_dir in run_dirs:
        check_run_ledger(run_dir, _HINT)
    result = calibrate([read_run(d) for d in run_dirs], min_fills=min_fills)
    snippet = result.toml()
    click.echo(snippet, nl=False)
    click.echo(result.set_line())
    if out is not None:
        out.write_text(snippet)
        click.echo(f"wrote {out}")


@click.group("league", cls=PluginGroup)
def league() -> None:
    """The strategy league: reference distributions for its degradation detector, and a
    run's league events."""


@league.command("reference")
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--slot", required=True, help="The strategy slot whose book to measure.")
@click.option("--window", default=168, show_default=True, type=click.IntRange(2),
              help="Rolling window in equity rows (the live league uses the same).")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the reference JSON here (else print it).")
def league_reference(run_dir: Path, slot: str, window: int, out: Path | None) -> None:
    """Measure a backtest's book equity for SLOT: the mean and SD of its rolling Sharpe
    and its drawdown percentiles, as the JSON [plugins.portfolio.league] references
    names."""
    from argus_portfolio.league import book_rows, reference_from_equity

    _writable(out)
    check_run_ledger(run_dir, _HINT)
    _known_book(run_dir, slot)
    ts, equity = book_rows(run_dir, slot)
    ref = reference_from_equity(ts, equity, window, slot=slot, source=str(run_dir))
    text = json.dumps(ref.to_json(), indent=1)
    if out is None:
        click.echo(text)
        return
    out.write_text(text + "\n")
    click.echo(f"{slot}: {ref.periods} returns, rolling Sharpe {ref.sharpe_mean:.2f} +- "
               f"{ref.sharpe_std:.2f} over {window} rows, drawdown q99 "
               f"{ref.drawdown_quantile(0.99):.2%}, deepest {ref.max_drawdown:.2%}; "
               f"wrote {out}")


@league.command("events")
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
def league_events(run_dir: Path) -> None:
    """A run's league transitions (quarantined, killed, ineligible) with their reasons."""
    from argus_portfolio.league import read_league_events

    check_run_ledger(run_dir, _HINT)
    rows = read_league_events(run_dir)
    if not rows:
        click.echo(f"{run_dir}: no league events")
    where = f"{Path(run_dir) / LEDGER_FILE}: league_events row {{}}"
    for r in rows:
        click.echo(f"{_utc(r['ts_ns'], where.format(r.get('id')))}  {r['slot']}  "
                   f"{r['from_status']} -> "
                   f"{r['to_status']}  {r['reason']}")


@league.command("books")
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON (money as exact strings).")
def league_books(run_dir: Path, as_json: bool) -> None:
    """Per-strategy and portfolio views of a run: each book's start and end equity,
    return, Sharpe, maximum drawdown, fills and league standing."""
    from argus_portfolio.books import HEADERS, books_table, jsonable, read_books

    check_run_ledger(run_dir, _HINT)
    books = read_books(run_dir)
    if as_json:
        click.echo(json.dumps(jsonable(books), indent=1))
        return
    if not books:
        click.echo(f"{run_dir}: no equity rows")
        return
    click.echo(_table(HEADERS, books_table(books)))
    for b in books:
        if b.reason:
            click.echo(b.reason)
