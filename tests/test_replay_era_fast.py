"""The replay's era pass reads the bars' text (issue 14, items 1-2), with the float path's
answers and errors.

When ``tick_size`` or ``lot_size`` is not configured the replay reads the bars once before
the replay to find the data's era's tick and lot.  That pass used to make every bar and
take ``decimals(repr(float))`` of its five values; now, of each batch of plain numbers, it
makes only the bars that decide (:func:`_era_picks`, found in the numbers' text) and
checks the others in bulk.  The reference kept here is the float path as it was: every
bar through :func:`era_rules`, with ``decimals`` / ``era_rules`` / ``era_step`` copied as
they were before the pass changed.  A seeded corpus of generated files (exponents,
trailing zeros, > 8 and > 15 digits, windows, gaps, ms times, CRLF, headers, quotes,
broken rows) and every CSV bundled or shared must give the same tick and lot, or the same
error, both ways.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

import pytest
from argus_test_helpers import BUNDLED_BARS, ROOT

from argus_core.builtins import replay_venue
from argus_core.builtins.replay_venue import (
    MAX_DECIMALS,
    ReplaySettings,
    ReplayVenue,
    decimals,
    era_rules,
    era_step,
    iter_bars_csv,
)
from argus_core.errors import DataError
from argus_core.models import Bar, MarketEvent, Trade

IID = "replay:BTC/USD"
SHARED = ROOT.parent / "shared" / "data"


# -- the float path as it was (the reference) ---------------------------------------------
def old_decimals(value: float) -> int:
    text = repr(value)
    if "e" in text or "E" in text:
        exponent = Decimal(text).normalize().as_tuple().exponent
        return max(0, -exponent) if isinstance(exponent, int) else MAX_DECIMALS
    _, dot, frac = text.partition(".")
    return len(frac.rstrip("0")) if dot else 0


def old_era_step(values: Iterable[float]) -> Decimal:
    most = 0
    for v in values:
        d = old_decimals(v)
        if d > most:
            most = d
            if most >= MAX_DECIMALS:
                break
    return Decimal(1).scaleb(-min(most, MAX_DECIMALS))


def old_era_rules(events: Iterable[MarketEvent], instrument_id: str) -> tuple[Decimal, Decimal]:
    prices = sizes = -1
    for ev in events:
        if type(ev) is Bar and ev.instrument_id == instrument_id:
            p: tuple[float, ...] = (ev.open, ev.high, ev.low, ev.close)
            q = ev.volume
        elif type(ev) is Trade and ev.instrument_id == instrument_id:
            p, q = (float(ev.price),), float(ev.size)
        else:
            continue
        prices, sizes = max(prices, *map(old_decimals, p)), max(sizes, old_decimals(q))
        if prices >= MAX_DECIMALS and sizes >= MAX_DECIMALS:
            break
    if prices < 0:
        return Decimal("1e-8"), Decimal("1e-8")
    return (Decimal(1).scaleb(-min(prices, MAX_DECIMALS)),
            Decimal(1).scaleb(-min(sizes, MAX_DECIMALS)))


Outcome = tuple[Decimal, Decimal] | tuple[str, str]


def _outcome(fn: object) -> Outcome:
    try:
        return fn()  # type: ignore[operator, no-any-return]  # a thunk of either pass
    except DataError as exc:
        return ("DataError", str(exc))


def both_ways(path: Path, bar_seconds: int = 3600, start: int | None = None,
              end: int | None = None) -> tuple[Outcome, Outcome]:
    """(the float path's outcome, the era pass's): every bar through the old era_rules,
    and the replay's own first pass through the current one."""
    ref = _outcome(lambda: old_era_rules(
        iter_bars_csv(path, IID, bar_seconds, start, end, warn_gaps=False), IID))
    new = _outcome(lambda: era_rules(
        iter_bars_csv(path, IID, bar_seconds, start, end, warn_gaps=False, era=True), IID))
    return ref, new


# -- the helpers kept their answers ---------------------------------------------------------
def test_decimals_era_step_and_era_rules_answer_as_before() -> None:
    rng = random.Random(14)
    values = [162.9811, 122.0, 1e-05, 1e16, 1.2345678901234567e17, 0.1 + 0.2, -0.0, 0.0,
              math.inf, -math.inf, math.nan, 5e-324, 1e308, 1200.0, 0.00012, 1e22, 123e-20]
    for _ in range(20_000):
        d = rng.randrange(0, 12)
        x = round(rng.uniform(0, 10 ** rng.randrange(0, 9)), d)
        values += [x, x * 10 ** rng.randrange(-12, 12), rng.random() * 10 ** rng.randrange(-9, 20)]
    for v in values:
        assert decimals(v) == old_decimals(v), v
    for i in range(0, len(values) - 7, 7):
        chunk = [v for v in values[i:i + 7] if math.isfinite(v)]
        assert era_step(iter(chunk)) == old_era_step(chunk)
    bars = list(iter_bars_csv(BUNDLED_BARS, IID, 3600))
    trades = [Trade(IID, 1, Decimal("10.125"), Decimal("0.5")),
              Trade("other:X", 2, Decimal("1.123456789"), Decimal("1"))]
    for events in (bars, bars[:10], bars[-500:], trades, bars[:5] + trades, []):
        assert era_rules(iter(events), IID) == old_era_rules(iter(events), IID)


# -- the era pass against the float path ----------------------------------------------------
def _cell(rng: random.Random, value: float, d: int) -> str:
    """``value`` as an exchange might write it."""
    kind = rng.random()
    if kind < 0.55:
        return f"{value:.{d}f}"  # fixed decimals, trailing zeros kept ("100.50")
    if kind < 0.75:
        return repr(round(value, d))
    if kind < 0.80:  # exponent notation (Kraken's volumes: 1E+1), the same number
        exact = Decimal(repr(value))
        return format(exact.normalize() if rng.random() < 0.5 else exact, "E" if
                      rng.random() < 0.5 else "e")
    if kind < 0.85:
        return f"{value:.{rng.randrange(12, 22)}f}"  # past 15 significant digits
    if kind < 0.88:
        return f" {value:.{d}f}"  # a space numpy reads
    if kind < 0.90:
        return f"+{value:.{d}f}"
    return f"{value:.{d}f}".rstrip("0") or "0"


def _corpus_file(rng: random.Random, path: Path) -> tuple[int, int | None, int | None]:
    """A generated bars file; (bar_seconds, start, end) to replay it with."""
    bar_seconds = rng.choice([60, 300, 3600, 86400])
    n = rng.choice([0, 1, 3, 40, 600, 2500, 6000])
    t0 = rng.choice([1_381_093_200, 1_600_000_000, 1_381_093_200_000])  # ms too
    scale = 1000 if t0 > 10**11 else 1
    early8 = rng.random() < 0.2  # prices and volumes at 8 decimals from the start
    width = rng.choice([6, 7, 7, 8])
    header = rng.random() < 0.25
    order = list(range(6))
    if header and rng.random() < 0.5:
        rng.shuffle(order)
    crlf = rng.random() < 0.15
    price_d = rng.choice([0, 1, 2, 4, 5, 8, 10])
    vol_d = rng.choice([0, 1, 4, 8, 9])
    lines: list[str] = []
    if header:
        names = ["timestamp", "open", "high", "low", "close", "volume"]
        extra = ["trades", "vwap"][: width - 6]
        lines.append(",".join([names[i] for i in order] + extra))
    t = t0
    for i in range(n):
        t += bar_seconds * scale * (1 if rng.random() > 0.05 else rng.randrange(2, 5))  # gaps
        pd = MAX_DECIMALS if early8 else (price_d if rng.random() < 0.995 else price_d + 1)
        vd = MAX_DECIMALS if early8 else (vol_d if rng.random() < 0.99 else rng.randrange(0, 10))
        base = rng.uniform(0.5, 60_000) if i % 97 else rng.uniform(1e-4, 1)
        lo, hi = sorted(round(base * rng.uniform(0.98, 1.02), pd) for _ in range(2))
        lo = max(lo, 10.0 ** -pd)
        hi = max(hi, lo)
        o, c = (round(rng.uniform(lo, hi), pd) for _ in range(2))
        o, c = min(max(o, lo), hi), min(max(c, lo), hi)
        v = round(rng.uniform(0, 50) * rng.choice([1, 1e-6, 1e3]), vd)
        values = [str(t), *(_cell(rng, x, pd) for x in (o, hi, lo, c)), _cell(rng, v, vd)]
        row = [values[order.index(k)] for k in range(6)] if header else values
        row += [str(rng.randrange(1, 99)), f"{base:.3f}"][: width - 6]
        lines.append(",".join(row))
    _break(rng, lines, header)
    path.write_bytes(("\r\n" if crlf else "\n").join(lines).encode() +
                     (b"\n" if rng.random() < 0.9 else b""))
    start = end = None
    if n and rng.random() < 0.5:
        first = t0 // scale
        span = (t - t0) // scale + 1
        start = first + rng.randrange(-span // 4, span) if rng.random() < 0.7 else None
        end = (start or first) + rng.randrange(1, span + 2) if rng.random() < 0.6 else None
    return bar_seconds, start, end


def _break(rng: random.Random, lines: list[str], header: bool) -> None:
    """Sometimes one flaw the reader refuses or reads its own way."""
    body = len(lines) - header
    if not body or rng.random() < 0.55:
        return
    at = header + rng.randrange(body)
    fields = lines[at].split(",")
    flaw = rng.randrange(9)
    if flaw == 0:
        fields[1] = "abc"  # not a number
    elif flaw == 1:
        fields = fields[:-1]  # a line cut short
    elif flaw == 2 and at > header:
        fields[0] = lines[at - 1].split(",")[0]  # a repeated time
    elif flaw == 3:
        fields[0] = "20230103"  # a date in digits
    elif flaw == 4:
        lines.insert(at, "")  # a blank line
        return
    elif flaw == 5:
        fields[1] = f'"{fields[1]}"'  # quoted
    elif flaw == 6:
        fields[5] = "-1"  # a negative volume (or another column, under a header)
    elif flaw == 7:
        fields[2] = "0.0000001"  # a high below the low (or another column)
    else:
        fields[4] = "nan"
    lines[at] = ",".join(fields)


@pytest.mark.parametrize("seed", range(8))
def test_a_generated_corpus_gives_the_float_paths_tick_lot_and_errors(
        tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    outcomes = []
    for k in range(25):
        path = tmp_path / f"bars{k}.csv"
        bar_seconds, start, end = _corpus_file(rng, path)
        ref, new = both_ways(path, bar_seconds, start, end)
        assert new == ref, (path.read_text()[:300], bar_seconds, start, end)
        outcomes.append(ref[0] == "DataError")
    assert 0 < sum(outcomes) < len(outcomes)  # both answers and errors compared


def test_with_numpy_refusing_every_batch_the_era_pass_is_the_float_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(99)
    cases = [(tmp_path / f"b{k}.csv", _corpus_file(rng, tmp_path / f"b{k}.csv"))
             for k in range(10)]
    monkeypatch.setattr(replay_venue, "_fast_batch", lambda lines, cols: None)
    for path, (bar_seconds, start, end) in cases:
        ref, new = both_ways(path, bar_seconds, start, end)
        assert new == ref


def _text(rows: list[str]) -> str:
    return "\n".join(rows) + "\n"


def _plain(n: int, *, price: str = "{:.1f}", vol: str = "{:.4f}", t0: int = 1_600_000_000
           ) -> list[str]:
    out = []
    for i in range(n):
        p = 100 + (i % 37) / 10
        out.append(f"{t0 + 60 * i},{price.format(p)},{price.format(p + 1)},"
                   f"{price.format(p - 1)},{price.format(p)},{vol.format(1 + i % 5 / 8)},3")
    return out


def test_the_deciding_bars_are_few_and_where_the_decimals_are(tmp_path: Path) -> None:
    """The pass must make only a few bars of a plain file (else it is the float path under
    another name), and still find a single finer value wherever it is."""
    rows = _plain(5000)
    path = tmp_path / "bars.csv"
    path.write_text(_text(rows))
    made = list(iter_bars_csv(path, IID, 60, warn_gaps=False, era=True))
    assert 0 < len(made) < 60  # ~10 batches: first, last, the finer ones
    assert era_rules(iter(made), IID) == (Decimal("0.1"), Decimal("0.001"))
    for at, col, more, want in [(3333, 2, "5", (Decimal("0.01"), Decimal("0.001"))),
                                (4999, 5, "23456789", (Decimal("0.1"), Decimal("1e-8"))),
                                (17, 3, "0001", (Decimal("0.00001"), Decimal("0.001"))),
                                (2500, 4, "000", (Decimal("0.1"), Decimal("0.001")))]:
        fields = rows[at].split(",")
        fields[col] += more  # a high 104.35, a volume 1.123456789, a low 100.70001, "102.1000"
        changed = [*rows[:at], ",".join(fields), *rows[at + 1:]]
        path.write_text(_text(changed))
        ref, new = both_ways(path, 60)
        assert new == ref == want, (at, col)
    # Past 15 significant digits a written value can round to fewer decimals (a float of
    # 101.0000000000000000001 is 101.0): that text must not stand for the bar, or the one
    # 2 decimals fine far later would go unseen.  An exponent is read by its float: 1.5e-05
    # has 6 decimals, not 1.
    for at, col, text, want in [(10, 1, "101.0000000000000000001", "0.01"),
                                (10, 5, "1.5e-05", "0.000001")]:
        changed = list(rows)
        fields = changed[at].split(",")
        fields[col] = text
        changed[at] = ",".join(fields)
        fields = changed[4000].split(",")
        fields[2] += "5"
        changed[4000] = ",".join(fields)
        path.write_text(_text(changed))
        ref, new = both_ways(path, 60)
        assert new == ref and Decimal(want) in ref, (text, ref)


def test_an_early_eighth_decimal_stops_the_pass_before_a_later_flaw(tmp_path: Path) -> None:
    """The float path stops at the bar where prices and volumes both reach 8 decimals; a
    flaw after it (in the same batch or a later one) is left to the replay itself."""
    rows = _plain(3000, price="{:.8f}", vol="{:.8f}")
    rows[0] = rows[0].replace("100.00000000", "100.00000001", 1)
    rows[0] = rows[0].replace(",1.00000000,", ",1.00000001,", 1)
    for bad in (5, 2000):
        path = tmp_path / f"early{bad}.csv"
        path.write_text(_text([*rows[:bad], "1600000000,abc,1,1,1,1,1", *rows[bad:]]))
        ref, new = both_ways(path, 60)
        assert new == ref == (Decimal("1e-8"), Decimal("1e-8"))
        with pytest.raises(DataError, match=rf"early{bad}.csv:{bad + 1}: malformed bar row"):
            list(iter_bars_csv(path, IID, 60))


@pytest.mark.parametrize("flaw", ["order", "overlap", "bar", "text", "date"])
@pytest.mark.parametrize("where", ["within a batch", "a batch's first line"])
def test_a_flaw_is_refused_by_the_era_pass_by_line_as_before(tmp_path: Path, flaw: str,
                                                             where: str) -> None:
    """The first pass still fails fast, with the replay's own message for the line; at a
    batch's first line the bar before it (the last of the batch before) is unpicked."""
    rows = _plain(3000)
    path = tmp_path / "flawed.csv"
    path.write_text(_text(rows))
    with open(path, newline="") as fh:
        batch = len(fh.readlines(replay_venue._BATCH_BYTES))  # a batch's number of lines
    at = 3 * batch + (batch // 2 if where == "within a batch" else 0)
    t, *rest = rows[at].split(",")
    bad = {"order": [str(int(t) - 120), *rest], "overlap": [str(int(t) - 30), *rest],
           "bar": [t, "100.0", "99.0", "101.0", "100.0", "1", "3"],
           "text": [t, "1,000.5", *rest[1:]], "date": ["20230103", *rest]}[flaw]
    path.write_text(_text([*rows[:at], ",".join(bad), *rows[at + 1:]]))
    ref, new = both_ways(path, 60)
    assert new == ref and ref[0] == "DataError" and f"flawed.csv:{at + 1}:" in ref[1], ref
    venue = ReplayVenue(ReplaySettings(bars_csv=path, symbol="X/USD", bar_seconds=60))
    with pytest.raises(DataError, match=f"flawed.csv:{at + 1}:"):
        venue.instrument  # noqa: B018  (the property runs the era pass: the error under test)


def test_windows_select_the_bars_whose_decimals_count(tmp_path: Path) -> None:
    rows = _plain(4000)
    fine = 2000
    fields = rows[fine].split(",")
    fields[5] = "1.12345"
    rows[fine] = ",".join(fields)
    path = tmp_path / "w.csv"
    path.write_text(_text(rows))
    t_fine = 1_600_000_000 + 60 * fine
    for start, end, lot in [(None, None, "0.00001"), (t_fine, None, "0.00001"),
                            (None, t_fine, "0.001"), (t_fine + 60, None, "0.001"),
                            (t_fine, t_fine + 1, "0.00001"), (10**12, None, "1e-8")]:
        ref, new = both_ways(path, 60, start, end)
        assert new == ref and ref[1] == Decimal(lot), (start, end)


BUNDLED_CSVS = sorted((ROOT / "examples").rglob("*.csv"))
SHARED_CSVS = sorted(p for sub in ("crypto", "equity") for p in (SHARED / sub).glob("*.csv")) \
    if SHARED.is_dir() else []


@pytest.mark.parametrize("path", BUNDLED_CSVS, ids=lambda p: p.name)
def test_every_bundled_csv_gives_the_float_paths_answer(path: Path) -> None:
    _real_file(path)


@pytest.mark.skipif(not SHARED_CSVS, reason="../shared/data is absent")
@pytest.mark.parametrize("path", SHARED_CSVS, ids=lambda p: p.name)
def test_every_shared_csv_gives_the_float_paths_answer(path: Path) -> None:
    _real_file(path)


def _real_file(path: Path) -> None:
    for bar_seconds, start, end in [(3600, None, None), (3600, 1_609_459_200, None),
                                    (3600, 1_625_097_600, 1_672_531_200), (86400, None, None),
                                    (3600, 1_381_190_400, 1_388_534_400)]:
        ref, new = both_ways(path, bar_seconds, start, end)
        assert new == ref, (path.name, bar_seconds, start, end)


def test_the_venue_serves_the_same_rules_from_the_bundled_bars() -> None:
    for start, end in [(None, None), ("2021-01-01", None), ("2013-10-06", "2014-01-01"),
                       ("2021-07-01", "2023-01-07")]:
        venue = ReplayVenue(ReplaySettings(bars_csv=BUNDLED_BARS, start=start, end=end))
        ref = old_era_rules(iter_bars_csv(BUNDLED_BARS, venue.instrument_id, 3600,
                                          replay_venue._to_epoch_s(start),
                                          replay_venue._to_epoch_s(end), warn_gaps=False),
                            venue.instrument_id)
        assert (venue.instrument.tick_size, venue.instrument.lot_size) == ref
