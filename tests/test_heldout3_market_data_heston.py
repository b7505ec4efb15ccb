"""Held-out option chains through the Heston route (``plugins/argus-gpu-heston``, CPU path).

Held-out variants derived from the bundled iVolatility SPX chain: NaN / infinite implied
vols, NaN bids, a crossed quote, a missing forward, duplicated and shuffled rows, headers
spelled ``Strike`` / `` IV``, expired rows and missing strikes, and the chain rescaled to
prices of 0.0001 and 100,000.

Found and fixed (failed before): a NaN or infinite IV and a NaN bid passed the ``> 0``
filters (NaN compares false), so NaN quotes reached the fit (each a fake residual of 1.0
and a NaN z-score flagged as an anomaly); a NaN forward kept *both* sides of the strike
(421 quotes instead of 405); a crossed quote (ask < bid) was fitted; duplicated rows were
fitted twice; a capitalised header was "not an iVolatility chain"; a bad number said
neither its column nor (with blank lines) the right line.

Held: Heston prices against an independent Black-Scholes at vanishing vol of variance,
the Black-76 implied vol round trip, and price homogeneity (the chain at 1e-4 and 1e5
prices gives the same model prices per unit of forward) -- written here, not imported.
"""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

import numpy as np
import pytest
from argus_gpu_heston.analytic import black_price, heston_price, implied_vol
from argus_gpu_heston.calibration import bundled_chain, load_chain, model_prices
from argus_gpu_heston.params import HestonParams
from scipy import stats

from argus_core import DataError

ROWS = list(csv.DictReader(bundled_chain().open(newline="", encoding="utf-8-sig")))
HEADER = list(ROWS[0])


def _write(path: Path, rows: list[dict[str, str]], header: list[str] | None = None) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header or HEADER)
        for r in rows:
            w.writerow([r[h] for h in HEADER])
    return path


def _keys(chain) -> set[tuple[float, float, bool]]:
    return {(float(t), float(k), bool(c)) for t, k, c in
            zip(chain.t, chain.strike, chain.is_call, strict=True)}


def _the_quote_row_indices() -> tuple[list[int], float, bool]:
    """Rows (all dates) of one strike/type that the bundled chain fits on 2011-01-03."""
    base = load_chain()
    k, call = float(base.strike[10]), bool(base.is_call[10])
    idx = [i for i, r in enumerate(ROWS) if float(r["strike"]) == k
           and r["isinterpolated"] != "*" and (r["call/put"] == "C") == call]
    return idx, k, call


@pytest.mark.parametrize(("field", "value"), [("iv", "nan"), ("iv", "inf"), ("iv", ""),
                                               ("bid", "nan"), ("bid", "")])
def test_a_quote_without_a_finite_iv_or_bid_is_not_fitted(tmp_path, field, value):
    idx, k, call = _the_quote_row_indices()
    rows = [dict(r) for r in ROWS]
    for i in idx:
        rows[i][field] = value
    chain = load_chain(_write(tmp_path / "c.csv", rows))
    assert np.isfinite(chain.iv).all()
    assert not ((chain.strike == k) & (chain.is_call == call)).any()
    assert len(chain) == len(load_chain()) - int(((load_chain().strike == k)
                                                  & (load_chain().is_call == call)).sum())


def test_a_crossed_quote_is_not_fitted(tmp_path):
    idx, k, call = _the_quote_row_indices()
    rows = [dict(r) for r in ROWS]
    for i in idx:
        rows[i]["ask"] = str(float(rows[i]["bid"]) - 0.05)
    chain = load_chain(_write(tmp_path / "c.csv", rows))
    assert not ((chain.strike == k) & (chain.is_call == call)).any()


@pytest.mark.parametrize(("field", "value"), [("forward_price", "nan"), ("forward_price", ""),
                                               ("strike", "abc"), ("strike", "-5"),
                                               ("stock_price_close", "inf")])
def test_a_bad_strike_forward_or_spot_names_file_line_and_column(tmp_path, field, value):
    rows = [dict(r) for r in ROWS]
    rows[7][field] = value
    path = _write(tmp_path / "c.csv", [*rows[:7], {h: "" for h in HEADER}, *rows[7:]])
    text = path.read_text().replace("\n" + "," * (len(HEADER) - 1) + "\n", "\n\n", 1)
    path.write_text(text)  # a blank line before the bad row: line numbers must count it
    with pytest.raises(DataError, match=rf"c\.csv:10: column '{field}' is '{value}', not a "
                                        rf"positive number"):
        load_chain(path)


def test_header_spellings_duplicates_and_row_order_give_the_same_chain(tmp_path):
    base = load_chain()
    rows = [dict(r) for r in ROWS] + [dict(r) for r in ROWS[::3]]
    random.Random(5).shuffle(rows)
    header = [f" {h.upper()}" if i % 2 else h.title() for i, h in enumerate(HEADER)]
    chain = load_chain(_write(tmp_path / "c.csv", rows, header))
    assert len(chain) == len(base) == 405
    assert _keys(chain) == _keys(base)
    order = np.lexsort((chain.is_call, chain.strike, chain.t))
    ref = np.lexsort((base.is_call, base.strike, base.t))
    assert np.array_equal(chain.iv[order], base.iv[ref])


def test_expired_rows_and_missing_strikes_are_left_out(tmp_path):
    rows = [dict(r) for r in ROWS if r["date"] == "1/3/11"]
    expired = [dict(r, option_expiration="12/17/10") for r in rows[:50]]
    holes = [r for r in rows if float(r["strike"]) % 50 != 0]  # every 50-point strike gone
    chain = load_chain(_write(tmp_path / "c.csv", expired + holes))
    assert (chain.t >= 7 / 365).all()
    assert not (chain.strike % 50 == 0).any() and len(chain) > 100


# -- pricing against independent formulas ---------------------------------------------
def _bs(call: bool, s: float, k: float, t: float, r: float, q: float, v: float) -> float:
    d1 = (math.log(s / k) + (r - q + v * v / 2) * t) / (v * math.sqrt(t))
    d2 = d1 - v * math.sqrt(t)
    n = stats.norm.cdf
    if call:
        return s * math.exp(-q * t) * n(d1) - k * math.exp(-r * t) * n(d2)
    return k * math.exp(-r * t) * n(-d2) - s * math.exp(-q * t) * n(-d1)


@pytest.mark.parametrize("scale", [1e-4, 1.0, 1e5])
@pytest.mark.parametrize(("kind", "m", "t"), [("put", 0.85, 0.25), ("put", 1.0, 1.0),
                                              ("call", 1.1, 0.5), ("call", 0.97, 30 / 365)])
def test_heston_at_vanishing_vol_of_variance_is_black_scholes_at_any_scale(scale, kind, m, t):
    v = 0.04
    # rho = 0: the price moves from Black-Scholes by O(sigma^2), not O(rho sigma).
    params = HestonParams(v0=v, kappa=1.0, theta=v, sigma=1e-4, rho=0.0)
    s, k = 100.0 * scale, 100.0 * m * scale
    got = float(heston_price(kind, s, k, t, 0.02, 0.01, params))
    ref = _bs(kind == "call", s, k, t, 0.02, 0.01, math.sqrt(v))
    assert got == pytest.approx(ref, rel=1e-5, abs=1e-9 * scale)


@pytest.mark.parametrize("scale", [1e-4, 1e5])
def test_chain_model_prices_scale_with_the_underlying(tmp_path, scale):
    rows = [dict(r) for r in ROWS]
    for r in rows:
        for col in ("strike", "forward_price", "stock_price_close"):
            r[col] = repr(float(r[col]) * scale)
    base, chain = load_chain(), load_chain(_write(tmp_path / "c.csv", rows))
    assert len(chain) == len(base)
    params = HestonParams(0.02, 2.0, 0.04, 0.6, -0.7)
    np.testing.assert_allclose(model_prices(params, chain) / scale,
                               model_prices(params, base), rtol=1e-7, atol=1e-9)
    mkt = black_price(chain.is_call, chain.fwd, chain.strike, chain.t, chain.iv)
    np.testing.assert_allclose(implied_vol(mkt, chain.is_call, chain.fwd, chain.strike,
                                           chain.t), chain.iv, rtol=1e-6)
    ref = [_bs(bool(c), f, k, t, 0.0, 0.0, v) for c, f, k, t, v in
           zip(chain.is_call, chain.fwd, chain.strike, chain.t, chain.iv, strict=True)]
    np.testing.assert_allclose(mkt, ref, rtol=1e-8, atol=1e-12 * scale)
