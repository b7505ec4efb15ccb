"""The strategy league: which strategy slots may trade, how healthy each is, and when one
is quarantined or killed — the ``league`` risk check.

Per strategy slot:

* **Eligibility** (the lab's verdict): ``[plugins.portfolio.league] verdicts`` pins one,
  else the newest ``lab_gate_verdicts`` row stored for the slot's family in the lab's
  ``lab.db`` (``deploy`` passes; ``hold`` and ``kill`` fail; none stored is ``unknown``,
  which passes only with ``allow_unknown``).  A slot that fails is INELIGIBLE: it never
  trades.  :func:`eligibility` is the same gate as a function, for the orchestrator's
  candidates.
* **Health** from its own book's equity (the ledger's book rows, carried; the
  ``equity`` rows when the run keeps one book), updated row by row: the rolling Sharpe
  of the last ``window`` per-row returns (running sums), the drawdown from the book's
  peak and the hit rate (share of rising rows among those that moved).
* **Degradation** against the slot's own backtest distribution, a :class:`Reference`
  (``argus league reference RUN_DIR --slot NAME`` writes it from a backtest's book
  equity; ``baseline_periods`` takes one from the slot's first rows in this run instead):
  with ``z = (sharpe - sharpe_mean) / max(sharpe_std, min_sharpe_std)`` and the drawdown
  ``dd``, the slot is QUARANTINED when ``z <= -z_quarantine`` *and*
  ``dd >= max(dd_multiple x the reference's dd_quantile drawdown, min_drawdown)`` (either
  alone is ordinary noise somewhere in a long run), and KILLED when
  ``dd >= kill_dd_multiple x max(the reference's deepest drawdown, min_drawdown)``.
* **States**: ACTIVE -> QUARANTINED -> KILLED (and INELIGIBLE).  Outside ACTIVE the
  slot's intents that open or add to a position of its own are vetoed with the reason,
  orders that shrink it pass (reduce-only exits skip exposure checks anyway), so the
  strategy's own exits close its book; its weight in the ``portfolio_weight`` sizer is 0.
  Nothing returns a slot to ACTIVE within a run.  Each transition is recorded in the
  transaction where it is decided: a ``league`` risk event (action ``quarantined``,
  ``killed`` or ``ineligible``) and a ``league_events`` row with the figures.
* **Smoothed weights**: each row's score (1 when healthy, falling to 0 as ``z`` reaches
  ``-z_quarantine`` or the drawdown the kill level) moves the slot's health by
  ``alpha x (score - health)``, at most ``max_health_step`` per row; every
  ``rebalance_every`` rows (and at a transition) the health is handed to the run's
  ``portfolio_weight`` sizer, which re-allocates bounded by its ``max_step``.

Where the book equity comes from: the check reads the run's ledger (handed over by the
plugin's ``on_startup``, as ``slippage_drift`` does) each time it runs (every intent, every
fill), taking the rows committed so far that are older than the current event (a row of
the current timestamp may still be rewritten).  Rows reach the ledger with each commit:
every ``checkpoint_every_events`` events in a replay, after every event with an order or a
fill in paper and live mode.  So the league judges with at most that lag; a replay that
wants it tight sets ``checkpoint_every_events`` small (the example: 24 hourly bars).
Because it reads only committed rows, a resumed replay sees exactly what the uninterrupted
one saw.  The check's state (windows, running sums, peaks, health, states and reasons,
tracked positions) is in every checkpoint.
"""

from __future__ import annotations

import enum
import json
import logging
import math
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import apsw
import attrs
import numpy as np
from numpy.typing import ArrayLike, NDArray

from argus_core import (
    LEDGER_FILE,
    ConfigError,
    DataError,
    Fill,
    Intent,
    Ledger,
    LedgerError,
    Portfolio,
    RiskCheck,
    RiskContext,
    RiskDecision,
    read_untouched,
)
from argus_portfolio.book_series import (
    CHANGES,
    book_table,
    carried_rows,
    carry_forward,
    read_with_path,
)
from argus_portfolio.enforcement import PortfolioWeight
from argus_portfolio.own_positions import OwnPositions
from argus_portfolio.settings import LeagueSettings, PortfolioSettings
from argus_portfolio.state import integer, number, optional_number, seq, table, text

log = logging.getLogger(__name__)

_YEAR_NS = 365.25 * 24 * 3600 * 1e9
#: Slots whose orders act for every book (the kill switch's flattening, settlements).
_HOUSE = frozenset({"flatten", "settlement", "unallocated"})
# Returns varying less than this per row (0.01 bps) are measured as if they varied this much:
# a flat window has Sharpe 0, a constant loss a large finite negative one, and rounding in
# the running sums (~1e-10) never reads as a real spread.
_SD_FLOOR = 1e-6


class Status(enum.StrEnum):
    """A slot's standing in the league."""

    ACTIVE = "active"
    QUARANTINED = "quarantined"  # no new exposure, weight 0; exits pass
    KILLED = "killed"            # the same, for good, with a harder reason
    INELIGIBLE = "ineligible"    # failed the eligibility gate: never trades


# -- eligibility -------------------------------------------------------------------------

@attrs.frozen
class Eligibility:
    """The eligibility gate's answer: ``verdict`` is pass / fail / unknown."""

    eligible: bool
    verdict: str
    reason: str


#: The lab's deploy-gate verdicts in the league's terms.
_LAB_VERDICTS = {"deploy": "pass", "hold": "fail", "kill": "fail", "pass": "pass",
                 "fail": "fail", "unknown": "unknown"}


def eligibility(verdict: str | None, *, allow_unknown: bool, source: str = "") -> Eligibility:
    """The eligibility gate on a lab verdict (``deploy`` / ``hold`` / ``kill``, or the
    league's ``pass`` / ``fail`` / ``unknown``; None: no verdict).  ``deploy`` passes,
    ``hold`` and ``kill`` fail, none passes only with ``allow_unknown``.  The orchestrator
    gives its candidates' gate verdicts to this same function."""
    raw = "unknown" if verdict is None else str(verdict).lower()
    if raw not in _LAB_VERDICTS:
        raise DataError(f"league: verdict {verdict!r}{' from ' + source if source else ''} "
                        f"is none of {', '.join(_LAB_VERDICTS)}")
    mapped = _LAB_VERDICTS[raw]
    where = f" ({source})" if source else ""
    if mapped == "pass":
        return Eligibility(True, mapped, f"lab verdict {raw}{where}")
    if mapped == "fail":
        return Eligibility(False, mapped, f"lab verdict {raw}{where}: not eligible")
    if allow_unknown:
        return Eligibility(True, mapped, f"no lab verdict{where}; unknown is allowed")
    return Eligibility(False, mapped, f"no lab verdict{where} and allow_unknown is false")


def lab_db_path(lab_dir: Path) -> Path:
    """The lab ledger: ``lab_dir`` itself when it is a file, else ``lab_dir/lab.db``."""
    return lab_dir if lab_dir.suffix == ".db" else lab_dir / "lab.db"


def stored_verdict(lab_dir: Path, family: str) -> str | None:
    """The newest deploy-gate verdict the lab stored for ``family``'s own strategies (None
    when there is no lab ledger, no verdict table or no verdict), read through a read-only
    connection.  A verdict of a candidate the orchestrator judged in that family (its
    details name a ``variant``: AI-written code, not the strategy this slot runs) is not
    this slot's: its ``deploy`` made the slot eligible."""
    path = lab_db_path(lab_dir)
    if not path.is_file():
        return None

    def verdict(conn: apsw.Connection) -> str | None:
        try:
            rows = conn.execute("select verdict, details_json from lab_gate_verdicts where "
                                "family = ? order by id desc", (family,))
            for value, details in rows:
                if not _variant_of(details):
                    return str(value)
        except apsw.SQLError:  # a lab ledger without the verdict table: nothing stored
            return None
        return None

    return read_untouched(path, verdict)


def _variant_of(details_json: object) -> str:
    """The ``variant`` a stored verdict's details name ("" for the config's own
    strategies; a details text that cannot be read names one: it is not trusted)."""
    try:
        details = json.loads(str(details_json))
    except ValueError:
        return "unreadable details"
    return str(details.get("variant") or "") if isinstance(details, dict) else "not an object"


# -- the reference distribution ----------------------------------------------------------

_PERCENTILES = np.linspace(0.0, 100.0, 101)


def period_returns(equity: ArrayLike) -> NDArray[np.float64]:
    """Simple returns between consecutive equity values (0 where equity was not > 0)."""
    e = np.asarray(equity, dtype=np.float64)
    prev = e[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(prev > 0, e[1:] / np.where(prev > 0, prev, 1.0) - 1.0, 0.0)
    return r.astype(np.float64)


def rolling_sharpe(returns: ArrayLike, window: int, periods_per_year: float
                   ) -> NDArray[np.float64]:
    """Annualised Sharpe (mean / sample SD x sqrt(periods_per_year)) of every full window
    of ``window`` returns, the SD at least 1e-6 (a flat window counts 0)."""
    r = np.asarray(returns, dtype=np.float64)
    if len(r) < window:
        return np.zeros(0)
    views = np.lib.stride_tricks.sliding_window_view(r, window)
    mean = views.mean(axis=1)
    sd = np.maximum(views.std(axis=1, ddof=1), _SD_FLOOR)
    return (mean / sd * math.sqrt(periods_per_year)).astype(np.float64)


def drawdowns(equity: ArrayLike) -> NDArray[np.float64]:
    """Drawdown from the running peak at every row, as a fraction of the peak."""
    e = np.asarray(equity, dtype=np.float64)
    peak = np.maximum.accumulate(e)
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(peak > 0, 1.0 - e / np.where(peak > 0, peak, 1.0), 0.0)
    return np.maximum(dd, 0.0).astype(np.float64)


def periods_per_year(ts_ns: ArrayLike) -> float:
    """Rows per year from the median spacing of the timestamps."""
    ts = np.asarray(ts_ns, dtype=np.float64)
    gaps = np.diff(ts)
    gaps = gaps[gaps > 0]
    if not len(gaps):
        raise DataError("league: the equity rows need at least two distinct timestamps")
    return float(_YEAR_NS / np.median(gaps))


@attrs.frozen
class Reference:
    """A strategy's backtest distribution: the mean and SD of its rolling Sharpe over
    every full ``window`` of rows, the percentiles 0..100 of its drawdown from peak at
    every row, and its hit rate.  ``periods_per_year`` annualises the Sharpe (live rows
    are annualised with the same figure)."""

    slot: str
    window: int
    periods: int
    periods_per_year: float
    sharpe_mean: float
    sharpe_std: float
    drawdown_percentiles: tuple[float, ...]
    hit_rate: float | None = None
    source: str = ""

    def drawdown_quantile(self, q: float) -> float:
        """The drawdown at quantile ``q`` in [0, 1] (interpolated between percentiles)."""
        return float(np.interp(q * 100.0, _PERCENTILES, self.drawdown_percentiles))

    @property
    def sampling_sd(self) -> float:
        """The standard error of one window's annualised Sharpe, ``sqrt(periods_per_year /
        window x (1 + SR^2 / 2))`` with ``SR`` the per-row Sharpe (Lo, 2002): a backtest's
        overlapping windows understate how far a window's Sharpe strays by chance, so
        ``z`` is never measured in a smaller SD than this."""
        per_row = self.sharpe_mean / math.sqrt(self.periods_per_year)
        return math.sqrt(self.periods_per_year / self.window * (1 + per_row ** 2 / 2))

    @property
    def max_drawdown(self) -> float:
        """The deepest drawdown in the backtest."""
        return self.drawdown_percentiles[-1]

    def to_json(self) -> dict[str, Any]:
        """JSON-able form (what ``argus league reference`` writes)."""
        return {"version": 1, "slot": self.slot, "window": self.window,
                "periods": self.periods, "periods_per_year": self.periods_per_year,
                "sharpe_mean": self.sharpe_mean, "sharpe_std": self.sharpe_std,
                "drawdown_percentiles": list(self.drawdown_percentiles),
                "hit_rate": self.hit_rate, "source": self.source}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str = "<reference>") -> Reference:
        """Parse :meth:`to_json` output, naming ``where`` and the key on any error."""
        try:
            pct = tuple(float(x) for x in data["drawdown_percentiles"])
            for key in ("window", "periods"):  # 72.9 was read as a window of 72
                if isinstance(data[key], bool) or float(data[key]) != int(data[key]):
                    raise ValueError(f"{key} = {data[key]!r} is not a whole number")
            ref = cls(str(data["slot"]), int(data["window"]), int(data["periods"]),
                      float(data["periods_per_year"]), float(data["sharpe_mean"]),
                      float(data["sharpe_std"]), pct,
                      None if data.get("hit_rate") is None else float(data["hit_rate"]),
                      str(data.get("source", "")))
        except KeyError as exc:
            raise ConfigError(f"{where}: league reference lacks key {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: league reference is malformed: {exc}") from None
        if len(pct) != len(_PERCENTILES) or list(pct) != sorted(pct) or pct[0] < 0 \
                or pct[-1] > 1:
            raise ConfigError(f"{where}: drawdown_percentiles must be 101 ascending "
                              f"values in [0, 1] (fractions of the peak)")
        numbers = (ref.periods_per_year, ref.sharpe_mean, ref.sharpe_std, *pct,
                   *(() if ref.hit_rate is None else (ref.hit_rate,)))
        if not all(math.isfinite(x) for x in numbers) or ref.periods_per_year <= 0 \
                or ref.sharpe_std < 0 or ref.window < 2 or ref.periods < 0 \
                or not (ref.hit_rate is None or 0 <= ref.hit_rate <= 1):
            raise ConfigError(f"{where}: league reference has a non-finite or out-of-range "
                              f"figure (window >= 2, periods >= 0, periods_per_year > 0, "
                              f"sharpe_std >= 0, hit_rate in [0, 1])")
        return ref

    @classmethod
    def load(cls, path: Path) -> Reference:
        """Read a reference JSON file."""
        try:
            data = json.loads(path.read_text())
        except OSError as exc:
            raise ConfigError(f"league reference {path}: cannot read it ({exc.strerror}); "
                              f"write it with `argus league reference RUN_DIR --slot NAME "
                              f"--out {path}`") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"league reference {path}: not JSON ({exc})") from None
        return cls.from_json(data, str(path))


def reference_from_equity(ts_ns: Sequence[int], equity: Sequence[float], window: int, *,
                          slot: str, source: str = "",
                          ppy: float | None = None) -> Reference:
    """The :class:`Reference` of one book's equity rows: rolling Sharpe over every full
    ``window`` of per-row returns, drawdown from peak at every row."""
    if window < 2:
        raise DataError(f"league reference: window must be >= 2, got {window}")
    if len(equity) != len(ts_ns):
        raise DataError("league reference: timestamps and equity differ in length")
    if len(equity) < window + 2:
        raise DataError(f"league reference for {slot!r}: {len(equity)} equity rows, need "
                        f"at least window + 2 = {window + 2} (a shorter window, or a "
                        f"longer backtest)")
    e = np.asarray(equity, dtype=np.float64)
    if not np.all(np.isfinite(e)):
        raise DataError(f"league reference for {slot!r}: non-finite equity")
    per_year = ppy if ppy is not None else periods_per_year(ts_ns)
    if not (math.isfinite(per_year) and per_year > 0):
        raise DataError(f"league reference for {slot!r}: periods per year must be a finite "
                        f"number > 0, got {per_year}")
    r = period_returns(e)
    sharpe = rolling_sharpe(r, window, per_year)
    moved = r[r != 0]
    return Reference(slot, window, len(r), per_year, float(sharpe.mean()),
                     float(sharpe.std(ddof=1)) if len(sharpe) > 1 else 0.0,
                     tuple(float(x) for x in np.percentile(drawdowns(e), _PERCENTILES)),
                     float((moved > 0).mean()) if len(moved) else None, source)


def book_rows(run_dir: Path, slot: str) -> tuple[list[int], list[float]]:
    """``slot``'s equity series from a run's ledger (read-only): its stored book rows
    carried onto the run's equity rows (see :mod:`argus_portfolio.book_series`), or the
    ``equity`` rows when the run kept one book."""
    path = Path(run_dir) / LEDGER_FILE
    if not path.is_file():
        raise DataError(f"{run_dir}: no ledger ({LEDGER_FILE}) in this folder")

    def read(conn: apsw.Connection) -> tuple[list[Any], Any]:
        with conn:  # one read transaction: the book's rows and the stamps of one commit
            table = book_table(conn)
            rows = [] if table is None else list(conn.execute(
                f"select ts_ns, equity from {table} where slot = ? order by ts_ns", (slot,)))
            if not rows:
                slots = [] if table is None else sorted(str(s) for (s,) in conn.execute(
                    f"select distinct slot from {table}"))
                if slots:
                    raise DataError(f"{run_dir}: no book named {slot!r} (books: "
                                    f"{', '.join(slots)})")
                rows, stamps = list(conn.execute(
                    "select ts_ns, equity from equity order by ts_ns")), None
            else:
                stamps = np.array([t for (t,) in conn.execute(
                    "select ts_ns from equity order by ts_ns")], dtype=np.int64)
        return rows, stamps

    rows, stamps = read_with_path(path, read)
    where = "equity" if stamps is None else f"book {slot!r}"
    ts_list, values = [], []
    for t, e in rows:
        try:
            if isinstance(t, bool) or not isinstance(t, int):
                raise ValueError("a stamp that is no whole number")
            try:
                value = float(Decimal(str(e)))
            except ArithmeticError:
                raise ValueError("not a decimal number") from None
            if not math.isfinite(value):
                raise ValueError("no finite number")
        except (ValueError, TypeError) as exc:
            raise LedgerError(f"{path}: a damaged {where} row at ts_ns {str(t)[:30]}: equity "
                              f"{str(e)[:40]!r} cannot be read ({exc})") from None
        ts_list.append(t)
        values.append(value)
    if stamps is None:  # one book: the account's equity rows are the series
        return ts_list, values
    ts, equity = carry_forward(stamps, np.array(ts_list, dtype=np.int64), np.array(values))
    return ts.tolist(), equity.tolist()


def read_league_events(run_dir: Path) -> list[dict[str, Any]]:
    """A run's ``league_events`` rows, oldest first (none when the table is absent)."""
    path = Path(run_dir) / LEDGER_FILE
    if not path.is_file():
        raise DataError(f"{run_dir}: no ledger ({LEDGER_FILE}) in this folder")

    def read(conn: apsw.Connection) -> list[dict[str, Any]]:
        try:
            cursor = conn.execute("select * from league_events order by id")
            names = [d[0] for d in cursor.getdescription()]
            return [dict(zip(names, row, strict=True)) for row in cursor]
        except apsw.ExecutionCompleteError:  # no rows
            return []
        except apsw.SQLError:  # the run never loaded the league
            return []

    return read_with_path(path, read)


# -- health, row by row ------------------------------------------------------------------

class SlotHealth:
    """One book's health, updated row by row: the last ``window`` returns with their
    running sums, the peak and drawdown, the hit counts, the smoothed health."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.returns: deque[float] = deque()
        self.s1 = 0.0
        self.s2 = 0.0
        self.ups = 0
        self.downs = 0
        self.peak = 0.0
        self.equity: float | None = None
        self.rows = 0
        self.health = 1.0

    def observe(self, equity: float) -> None:
        """Add one equity row."""
        self.rows += 1
        prev, self.equity = self.equity, equity
        self.peak = max(self.peak, equity)
        if prev is None:
            return
        r = equity / prev - 1.0 if prev > 0 else 0.0
        self.returns.append(r)
        self.s1 += r
        self.s2 += r * r
        self.ups += r > 0
        self.downs += r < 0
        # while, not if: a window made shorter (a restored state, a reference of a shorter
        # window) would otherwise stay longer for good, one out for each one in
        while len(self.returns) > self.window:
            old = self.returns.popleft()
            self.s1 -= old
            self.s2 -= old * old
            self.ups -= old > 0
            self.downs -= old < 0

    @property
    def full(self) -> bool:
        """Whether a whole window of returns is in."""
        return len(self.returns) >= self.window

    def sharpe(self, per_year: float) -> float:
        """Annualised Sharpe of the window (0 when flat)."""
        n = len(self.returns)
        if n < 2:
            return 0.0
        var = (self.s2 - self.s1 * self.s1 / n) / (n - 1)
        sd = max(math.sqrt(var) if var > 0 else 0.0, _SD_FLOOR)
        return self.s1 / n / sd * math.sqrt(per_year)

    @property
    def drawdown(self) -> float:
        """Drawdown from the peak, as a fraction of it."""
        if self.equity is None or self.peak <= 0:
            return 0.0
        return max(0.0, 1.0 - self.equity / self.peak)

    @property
    def hit_rate(self) -> float | None:
        """Share of rising rows among the window's rows that moved."""
        moved = self.ups + self.downs
        return self.ups / moved if moved else None

    def get_state(self) -> dict[str, Any]:
        """Exact JSON state (floats round-trip through JSON exactly)."""
        return {"returns": list(self.returns), "s1": self.s1, "s2": self.s2,
                "ups": self.ups, "downs": self.downs, "peak": self.peak,
                "equity": self.equity, "rows": self.rows, "health": self.health}

    def set_state(self, state: Mapping[str, Any], key: str = "health") -> None:
        """Restore :meth:`get_state` output (a damaged one is a ``ValueError`` naming the
        key: a NaN health stayed NaN for good)."""
        state = table(state, key)
        self.returns = deque(number(x, f"{key}.returns[{n}]")
                             for n, x in enumerate(seq(state["returns"], f"{key}.returns")))
        self.s1, self.s2 = number(state["s1"], f"{key}.s1"), number(state["s2"], f"{key}.s2")
        self.ups = integer(state["ups"], f"{key}.ups", 0)
        self.downs = integer(state["downs"], f"{key}.downs", 0)
        self.peak = number(state["peak"], f"{key}.peak")
        self.equity = optional_number(state["equity"], f"{key}.equity")
        self.rows = integer(state["rows"], f"{key}.rows", 0)
        # [0, 1], give or take a rounding (the value is kept as written: a resumed run
        # goes on from exactly where it stopped)
        self.health = number(state["health"], f"{key}.health", -1e-9, 1 + 1e-9)


def smooth(health: float, score: float, alpha: float, max_step: float) -> float:
    """One smoothing step: ``health + clip(alpha x (score - health), +-max_step)``."""
    step = alpha * (score - health)
    return health + max(-max_step, min(max_step, step))


@attrs.define
class Judgement:
    """The detector's figures for one slot at one row, and its finding."""

    sharpe: float
    z: float
    drawdown: float
    quarantine_dd: float
    kill_dd: float
    score: float
    finding: Status | None = None


def judge(h: SlotHealth, ref: Reference, s: LeagueSettings) -> Judgement:
    """Compare ``h`` with ``ref``: the health score, and QUARANTINED / KILLED when the
    rules of the module docstring say so (None otherwise)."""
    sharpe = h.sharpe(ref.periods_per_year)
    z = (sharpe - ref.sharpe_mean) / max(ref.sharpe_std, ref.sampling_sd, s.min_sharpe_std)
    dd = h.drawdown
    q_dd = max(s.dd_multiple * ref.drawdown_quantile(s.dd_quantile), s.min_drawdown)
    k_dd = max(s.kill_dd_multiple * max(ref.max_drawdown, s.min_drawdown), q_dd)
    sharpe_score = min(1.0, max(0.0, 1.0 + min(z, 0.0) / s.z_quarantine)) if h.full else 1.0
    score = min(sharpe_score, max(0.0, 1.0 - dd / k_dd))
    out = Judgement(sharpe, z, dd, q_dd, k_dd, score)
    if dd >= k_dd:
        out.finding = Status.KILLED
    elif h.full and z <= -s.z_quarantine and dd >= q_dd:
        out.finding = Status.QUARANTINED
    return out


# -- the risk check ----------------------------------------------------------------------

#: Each live league check by ``id`` of the settings object it was built from (as in
#: :mod:`argus_portfolio.drift`): the plugin's ``on_startup`` finds this run's check.
_LEAGUES: weakref.WeakValueDictionary[int, League] = weakref.WeakValueDictionary()


def league_for(settings: object) -> League | None:
    """The ``league`` check built from ``settings`` (this very object), if any."""
    check = _LEAGUES.get(id(settings))
    return check if check is not None and check.s is settings else None


class SlotState:
    """Everything the league holds about one slot."""

    def __init__(self, window: int) -> None:
        self.status = Status.ACTIVE
        self.reason = ""
        self.verdict: str | None = None  # pass / fail / unknown, once looked up
        self.recorded = False  # the ineligible event is in the ledger
        self.health = SlotHealth(window)
        self.reference: Reference | None = None
        self.baseline: list[tuple[int, float]] = []  # rows for an in-run reference
        self.last_ts = -1  # the newest book-equity row consumed
        self.streak = 0  # consecutive rows the quarantine rule has held

    def get_state(self) -> dict[str, Any]:
        """JSON state."""
        return {"status": self.status.value, "reason": self.reason, "verdict": self.verdict,
                "recorded": self.recorded, "health": self.health.get_state(),
                "reference": None if self.reference is None else self.reference.to_json(),
                "baseline": [list(x) for x in self.baseline], "last_ts": self.last_ts,
                "streak": self.streak}


class League(RiskCheck):
    """The strategy league (see the module docstring): eligibility, health, degradation,
    quarantine and kill per strategy slot."""

    name = "league"

    def __init__(self, settings: PortfolioSettings | None) -> None:
        self.s = settings or PortfolioSettings()
        self.ls = self.s.league
        self.ledger: Ledger | None = None
        self.config: Any = None
        self.sizer: Any = None  # the run's portfolio_weight sizer, if it is the sizer
        self.slots: dict[str, SlotState] = {}
        self.positions = OwnPositions()
        self.rows_seen = 0  # distinct row timestamps consumed (the rebalance clock)
        self._single_book: bool | None = None
        self._files: dict[str, Reference] = {}
        self._warned = False
        #: the sizer's weights from a restored checkpoint, until the sizer is attached
        self._restored_sizer: dict[str, Any] | None = None
        if settings is not None:
            _LEAGUES[id(settings)] = self

    # -- wiring ------------------------------------------------------------------------
    def attach(self, ledger: Ledger | None, config: Any = None, sizer: Any = None) -> None:
        """Give the league the run's ledger, its config (to resolve reference and lab
        paths against the config file, and to know the slots) and the run's
        ``portfolio_weight`` sizer (or None); reference files are read now, so a
        missing or malformed one stops the run before it trades."""
        self.ledger, self.config, self.sizer = ledger, config, sizer
        self._files = {slot: Reference.load(self._path(p))
                       for slot, p in self.ls.references.items()}
        for slot, ref in self._files.items():  # slots restored before the files were read
            if slot in self.slots:
                st = self.slots[slot]
                if st.reference is None:
                    st.reference = ref
                # the window of the reference in use (the checkpoint's, which the run
                # judged against, when the file changed meanwhile)
                st.health.window = st.reference.window
        for slot in self._configured_slots():
            self._slot(slot)
        self._hand_over()

    def _path(self, value: str) -> Path:
        if self.config is not None and hasattr(self.config, "resolve_path"):
            return Path(self.config.resolve_path(value))
        return Path(value)

    def _configured_slots(self) -> list[str]:
        strategies = list(getattr(getattr(self.config, "run", None), "strategies", []) or [])
        return sorted({*strategies, *self.ls.references, *self.ls.verdicts})

    def _slot(self, slot: str) -> SlotState:
        st = self.slots.get(slot)
        if st is None:
            st = self.slots[slot] = SlotState(self._window(slot))
            st.reference = self._files.get(slot)
        if st.verdict is None:
            gate = self.gate(slot)
            st.verdict = gate.verdict
            if not gate.eligible and st.status is Status.ACTIVE:
                st.status, st.reason = Status.INELIGIBLE, f"ineligible: {gate.reason}"
                st.health.health = 0.0
        return st

    def _window(self, slot: str) -> int:
        ref = self._files.get(slot)
        return ref.window if ref is not None else self.ls.window

    def gate(self, slot: str) -> Eligibility:
        """The eligibility gate for ``slot``: its pinned verdict, else the lab's."""
        if slot in self.ls.verdicts:
            return eligibility(self.ls.verdicts[slot], allow_unknown=self.ls.allow_unknown,
                               source="pinned in [plugins.portfolio.league] verdicts")
        family = self.ls.lab_families.get(slot, slot)
        if self.ls.lab_dir is None:
            return eligibility(None, allow_unknown=self.ls.allow_unknown,
                               source="no lab_dir configured")
        lab = self._path(self.ls.lab_dir)
        return eligibility(stored_verdict(lab, family), allow_unknown=self.ls.allow_unknown,
                           source=f"family {family!r} in {lab_db_path(lab)}")

    # -- reading the books ---------------------------------------------------------------
    def _rows(self, slot: str, after: int, before: int) -> list[tuple[int, float]]:
        assert self.ledger is not None
        # The book's rows carried onto the equity rows (see argus_portfolio.book_series);
        # a stamp before the book's first row has no equity. One book: none stored.
        rows = [] if self._single_book else carried_rows(self.ledger.query, slot, after,
                                                         before)
        if not rows and self._one_book():
            rows = [(int(r["ts_ns"]), str(r["equity"])) for r in self.ledger.query(
                "select ts_ns, equity from equity where ts_ns > ? and ts_ns < ? order by "
                "ts_ns", (after, before))]
        return [(t, float(e)) for t, e in rows]

    def _one_book(self) -> bool:
        """True when the run keeps one book (then the ``equity`` rows are that book's)."""
        if self._single_book is None:
            assert self.ledger is not None
            if self.ledger.query(f"select 1 from {CHANGES} limit 1"):
                self._single_book = False
            elif len([s for s in self.slots if s not in _HOUSE]) > 1:
                return False  # several slots and no book rows yet: wait for them
            elif self.ledger.query("select 1 from equity limit 1"):
                self._single_book = True
        return bool(self._single_book)

    def update(self, now_ns: int) -> None:
        """Consume every slot's book-equity rows committed before ``now_ns``, judge each
        slot row by row, and record the transitions (at ``now_ns``, when they take
        effect)."""
        if self.ledger is None:
            if not self._warned:
                log.warning("%s: no run ledger attached (the portfolio plugin's on_startup "
                            "did not run); strategy health is not judged", self.name)
                self._warned = True
            return
        if not self.ls.baseline_periods and all(st.reference is None
                                                for st in self.slots.values()):
            return  # nothing to judge against: the league only gates
        by_ts: dict[int, list[tuple[str, float]]] = {}
        # in slot order, not the order slots were first seen: a resumed run restores them
        # sorted, and two slots changing standing on one row must be recorded alike
        for slot, st in sorted(self.slots.items()):
            if slot in _HOUSE:
                continue
            for ts, equity in self._rows(slot, st.last_ts, now_ns):
                by_ts.setdefault(ts, []).append((slot, equity))
        changed = False
        for ts in sorted(by_ts):
            for slot, equity in by_ts[ts]:
                changed |= self._row(slot, ts, equity, now_ns)
            self.rows_seen += 1
            if self.rows_seen % self.ls.rebalance_every == 0:
                changed = True
        if changed:
            self.feed_sizer()

    def _row(self, slot: str, ts: int, equity: float, now_ns: int) -> bool:
        """One book-equity row of ``slot``; True when its state changed."""
        st = self.slots[slot]
        st.last_ts = ts
        h = st.health
        h.observe(equity)
        if st.reference is None and self.ls.baseline_periods:
            st.baseline.append((ts, equity))
            if len(st.baseline) > self.ls.baseline_periods:
                st.reference = reference_from_equity(
                    [t for t, _ in st.baseline], [e for _, e in st.baseline],
                    self.ls.window, slot=slot,
                    source=f"this run's first {self.ls.baseline_periods} rows")
                st.baseline = []
                log.info("league: %s's in-run reference: rolling Sharpe %.2f +- %.2f, "
                         "drawdown q%g %.2f%%", slot, st.reference.sharpe_mean,
                         st.reference.sharpe_std, self.ls.dd_quantile * 100,
                         100 * st.reference.drawdown_quantile(self.ls.dd_quantile))
            return False
        if st.status is not Status.ACTIVE and st.status is not Status.QUARANTINED:
            h.health = 0.0
            return False
        if st.reference is None:
            return False
        j = judge(h, st.reference, self.ls)
        if st.status is Status.QUARANTINED:
            h.health = 0.0
            if j.finding is Status.KILLED:
                self._transition(slot, Status.KILLED, j, ts, now_ns)
                return True
            return False
        h.health = smooth(h.health, j.score, self.ls.alpha, self.ls.max_health_step)
        # quarantine only on a finding that persists (a chance dip is brief); kill at once
        st.streak = st.streak + 1 if j.finding is Status.QUARANTINED else 0
        if j.finding is Status.KILLED or st.streak >= self.ls.confirm_rows:
            self._transition(slot, j.finding or Status.QUARANTINED, j, ts, now_ns)
            return True
        return False

    def _transition(self, slot: str, to: Status, j: Judgement, row_ts: int,
                    now_ns: int) -> None:
        st = self.slots[slot]
        ref = st.reference
        assert ref is not None
        before = st.status
        # whole seconds by integer division (a float ns / 1e9 rounds up to the next minute)
        when = datetime.fromtimestamp(row_ts // 10**9, UTC).strftime("%Y-%m-%d %H:%M")
        killed = (f"drawdown {j.drawdown:.2%} >= kill level {j.kill_dd:.2%} "
                  f"({self.ls.kill_dd_multiple:g} x the larger of the reference's deepest "
                  f"{ref.max_drawdown:.2%} and the floor {self.ls.min_drawdown:.2%})")
        rule = (killed if to is Status.KILLED else
                f"rolling Sharpe {j.sharpe:.2f} over {ref.window} rows is {j.z:.1f} SD "
                f"from the reference's {ref.sharpe_mean:.2f} +- {ref.sharpe_std:.2f} "
                f"(limit -{self.ls.z_quarantine:g}) and drawdown {j.drawdown:.2%} >= "
                f"{j.quarantine_dd:.2%} (reference q{self.ls.dd_quantile:g} "
                f"{ref.drawdown_quantile(self.ls.dd_quantile):.2%} x {self.ls.dd_multiple:g}"
                f", floor {self.ls.min_drawdown:.2%})")
        st.status = to
        st.reason = (f"league: strategy {slot!r} {to.value} as of its book row of {when} "
                     f"UTC: {rule}")
        st.health.health = 0.0
        log.warning(st.reason)
        self._record(now_ns, slot, before, to, st.reason, j)

    def _record(self, ts_ns: int, slot: str, before: Status, to: Status, reason: str,
                j: Judgement | None) -> None:
        assert self.ledger is not None
        self.ledger.record_risk_event(ts_ns, self.name, to.value, reason, None, slot)
        self.ledger.insert("league_events", {
            "ts_ns": ts_ns, "slot": slot, "from_status": before.value,
            "to_status": to.value, "reason": reason,
            "sharpe": None if j is None else j.sharpe, "sharpe_z": None if j is None else j.z,
            "drawdown": None if j is None else j.drawdown,
            "verdict": self.slots[slot].verdict})

    def feed_sizer(self) -> None:
        """Hand the slots' smoothed health to the run's ``portfolio_weight`` sizer."""
        if self.sizer is None:
            return
        health = {slot: st.health.health for slot, st in self.slots.items()
                  if slot not in _HOUSE}
        blocked = {slot for slot, st in self.slots.items() if st.status is not Status.ACTIVE}
        self.sizer.set_health(health, blocked)

    def health(self) -> dict[str, dict[str, Any]]:
        """Each slot's standing and figures (for reports and tests)."""
        out: dict[str, dict[str, Any]] = {}
        for slot, st in self.slots.items():
            h = st.health
            ref = st.reference
            out[slot] = {"status": st.status.value, "reason": st.reason,
                         "verdict": st.verdict, "health": h.health,
                         "sharpe": h.sharpe(ref.periods_per_year) if ref else None,
                         "drawdown": h.drawdown, "hit_rate": h.hit_rate, "rows": h.rows}
        return out

    # -- RiskCheck -------------------------------------------------------------------------
    def on_fill(self, fill: Fill, portfolio: Portfolio, ctx: RiskContext) -> None:
        """Track each slot's own position (from its order row) and judge the books."""
        if self.ledger is None:
            return
        row = self.ledger.order_row(fill.client_order_id)
        if row is not None:
            self.positions.add(str(row["strategy"]), fill)
        self.update(fill.ts_ns)

    def check(self, intent: Intent, quantity: Decimal, price: Decimal,
              portfolio: Portfolio, ctx: RiskContext) -> RiskDecision:
        """Veto new exposure of a slot that is not ACTIVE; allow everything else."""
        st = self._slot(intent.strategy)
        if st.status is Status.INELIGIBLE and not st.recorded and self.ledger is not None:
            st.recorded = True
            self._record(ctx.ts_ns, intent.strategy, Status.ACTIVE, Status.INELIGIBLE,
                         st.reason, None)
            self.feed_sizer()
        self.update(ctx.ts_ns)
        if st.status is Status.ACTIVE:
            return RiskDecision.allow(self.name)
        reduces, why = self.positions.judge(self.ledger, intent, quantity)
        if reduces:
            return RiskDecision.allow(self.name)
        return RiskDecision.veto(self.name, f"strategy {intent.strategy!r} is "
                                            f"{st.status.value.upper()} ({st.reason}); only "
                                            f"orders that reduce its own position pass{why}")

    def get_state(self) -> dict[str, Any]:
        """Every slot's state, tracked positions, the rebalance clock and the run's
        ``portfolio_weight`` sizer's weights (JSON-able).  The core keeps no sizer state
        and only the league moves those weights in a run: without them a resumed run
        started again from the model's weights, and a strategy whose health had walked
        its weight down step by step got most of it back at once."""
        state: dict[str, Any] = {"slots": {k: v.get_state() for k, v in self.slots.items()},
                                 "positions": self.positions.get_state(),
                                 "rows_seen": self.rows_seen}
        if self.sizer is not None and hasattr(self.sizer, "get_state"):
            state["sizer"] = self.sizer.get_state()
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state` output; a damaged one is a ``ValueError`` naming
        the key (the core's restore names the ledger and the checkpoint)."""
        state = dict(table(state, self.name))
        slots = table(state.get("slots", {}), f"{self.name}.slots")
        for slot, saved in slots.items():
            key = f"{self.name}.slots.{slot}"
            saved = table(saved, key)
            st = self.slots.get(slot) or SlotState(self._window(slot))
            self.slots[slot] = st
            try:
                st.status = Status(saved["status"])
            except ValueError:
                raise ValueError(f"{key}.status: {saved['status']!r:.40} is none of "
                                 f"{', '.join(s.value for s in Status)}") from None
            st.reason = text(saved["reason"], f"{key}.reason")
            verdict = saved["verdict"]
            st.verdict = None if verdict is None else text(verdict, f"{key}.verdict")
            st.recorded = bool(saved["recorded"])
            st.health.set_state(saved["health"], f"{key}.health")
            ref = saved.get("reference")
            try:
                st.reference = None if ref is None else Reference.from_json(
                    table(ref, f"{key}.reference"),
                    f"checkpointed league reference of {slot!r}")
            except ConfigError as exc:  # a damaged checkpoint, not a config mistake
                raise ValueError(str(exc)) from None
            st.baseline = []
            for n, row in enumerate(seq(saved.get("baseline", []), f"{key}.baseline")):
                pair = seq(row, f"{key}.baseline[{n}]")
                if len(pair) != 2:
                    raise ValueError(f"{key}.baseline[{n}]: expected [ts_ns, equity], got "
                                     f"{len(pair)} values")
                st.baseline.append((integer(pair[0], f"{key}.baseline[{n}] ts"),
                                    number(pair[1], f"{key}.baseline[{n}] equity")))
            st.last_ts = integer(saved["last_ts"], f"{key}.last_ts", -1)
            st.streak = integer(saved.get("streak", 0), f"{key}.streak", 0)
        self.positions.set_state(state.get("positions", {}), f"{self.name}.positions")
        self.rows_seen = integer(state.get("rows_seen", 0), f"{self.name}.rows_seen", 0)
        sizer = state.get("sizer")
        if sizer is not None:  # checked now, inside the core's restore, not at attach
            PortfolioWeight.read_state(sizer, f"{self.name}.sizer")
        self._restored_sizer = None if sizer is None else dict(sizer)
        self._hand_over()

    def _hand_over(self) -> None:
        """Give the run's sizer the weights a restored checkpoint holds (they are where
        the uninterrupted run had them: no re-allocation step is added), else the
        slots' current health."""
        if self.sizer is None:
            return
        if self._restored_sizer is not None and hasattr(self.sizer, "set_state"):
            saved, self._restored_sizer = self._restored_sizer, None
            self.sizer.set_state(saved, f"{self.name}.sizer")
            return
        self.feed_sizer()


def league_migrations(migrations: Any) -> None:
    """The ``portfolio`` migration set: the ``league_events`` table (one row per league
    transition, with its reason and figures)."""
    portfolio = migrations.set("portfolio")

    @portfolio
    def m001_league_events(conn: apsw.Connection) -> None:
        conn.execute("create table league_events (id integer primary key autoincrement, "
                     "ts_ns integer not null, slot text not null, from_status text not null,"
                     " to_status text not null, reason text not null, sharpe real, "
                     "sharpe_z real, drawdown real, verdict text)")

