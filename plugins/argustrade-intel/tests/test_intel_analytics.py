"""The analytics endpoints against independent computations: regimes against the lab's
online tracker fed bar by bar, implied vols and anomalies against a chain priced from a
known smile, VRP spreads against deltas computed here, Heston PoP against the lognormal
limit and the pricer itself."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pytest
from argus_intel.pricers import build_pricer
from argus_lab.regime import REGIME_NAMES, BocpdParams, RegimeTracker, VolRegimeParams
from fastapi.testclient import TestClient
from intel_helpers import auth, walk
from scipy.stats import norm

from argus_core import OptionLeg
from argus_core.testing import RunResult


def _bs(kind: str, s: float, k: float, t: float, r: float, q: float, vol: float) -> float:
    d1 = (math.log(s / k) + (r - q + vol * vol / 2) * t) / (vol * math.sqrt(t))
    d2 = d1 - vol * math.sqrt(t)
    if kind == "call":
        return float(s * math.exp(-q * t) * norm.cdf(d1) - k * math.exp(-r * t) * norm.cdf(d2))
    return float(k * math.exp(-r * t) * norm.cdf(-d2) - s * math.exp(-q * t) * norm.cdf(-d1))


# -- regimes ---------------------------------------------------------------------------

def _closes() -> np.ndarray:
    rng = np.random.default_rng(11)
    returns = np.concatenate([rng.normal(0, 0.005, 300), rng.normal(0, 0.03, 150)])
    return np.asarray(100 * np.exp(np.cumsum(returns)))


def test_regimes_equal_the_lab_tracker_bar_by_bar_and_find_the_change(
        client: TestClient, key: str) -> None:
    closes = _closes()
    ts = [1_600_000_000_000_000_000 + i * 3_600_000_000_000 for i in range(len(closes))]
    body = {"closes": closes.tolist(), "ts_ns": ts, "hazard_lambda": 200, "window": 10,
            "threshold": 0.5, "vol_window": 20, "lookback": 100}
    rows, pages = walk(client, "/v1/regimes?limit=100", auth(key), method="POST", body=body)
    assert pages == 5 and len(rows) == len(closes)
    tracker = RegimeTracker(BocpdParams(hazard_lambda=200, window=10),
                            VolRegimeParams(vol_window=20, lookback=100))
    for i, (row, c) in enumerate(zip(rows, closes, strict=True)):
        state = tracker.update(ts[i], float(c))
        assert row["index"] == i and row["ts_ns"] == ts[i]
        assert row["p_change"] == pytest.approx(state.p_change, abs=1e-12)
        assert row["run_length"] == state.run_length
        assert row["regime"] == REGIME_NAMES.get(state.regime, "unknown")
        if math.isfinite(state.realised_vol):
            assert row["realised_vol"] == pytest.approx(state.realised_vol, rel=1e-12)
        else:
            assert row["realised_vol"] is None
    page = client.post("/v1/regimes", headers=auth(key), json=body).json()
    points = [p["index"] for p in page["change_points"]]
    assert any(300 <= i <= 320 for i in points), points  # the volatility jump at bar 300
    assert all(i >= 300 for i in points[-1:])
    assert rows[310]["regime"] == "stressed" and rows[250]["regime"] != "stressed"


def test_regimes_of_a_served_run_equal_those_of_its_posted_closes(
        client: TestClient, key: str, replay_run: RunResult) -> None:
    run_id = replay_run.summary.run_id
    by_run, _ = walk(client, "/v1/regimes?limit=200", auth(key), method="POST",
                     body={"run_id": run_id, "lookback": 50})
    bars, _ = walk(client, f"/v1/runs/{run_id}/bars?limit=1000", auth(key))
    posted, _ = walk(client, "/v1/regimes?limit=1000", auth(key), method="POST",
                     body={"closes": [b["close"] for b in bars],
                           "ts_ns": [b["ts_ns"] for b in bars], "lookback": 50})
    assert by_run == posted and len(by_run) == len(bars)
    got, pages = walk(client, f"/v1/regimes?run_id={run_id}&lookback=50&limit=300", auth(key))
    assert got == by_run and pages == 2  # GET pages follow their next links


@pytest.mark.parametrize("body", [{}, {"closes": [1.0]}, {"closes": [1.0, -2.0]},
                                  {"closes": [1.0, 2.0], "run_id": "x"},
                                  {"closes": [1.0, 2.0, 3.0], "ts_ns": [1]},
                                  {"closes": [1.0, 2.0], "hazard_lambda": 0.5}])
def test_bad_regime_requests_are_422(client: TestClient, key: str, body: dict[str, Any]
                                     ) -> None:
    r = client.post("/v1/regimes", headers=auth(key), json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] in ("invalid_request", "invalid_data")


# -- IV anomalies ------------------------------------------------------------------------

S, R, Q = 100.0, 0.02, 0.01
AS_OF = dt.date(2024, 1, 2)


def _smile(x: float, t: float) -> float:
    return 0.2 + 0.05 * t - 0.12 * x + 0.4 * x * x


def _chain(bump: dict[tuple[int, float], float]) -> list[dict[str, Any]]:
    """Puts below the forward, calls above, priced at the smile (+ ``bump`` vol)."""
    quotes = []
    for days in (30, 90):
        t = days / 365
        fwd = S * math.exp((R - Q) * t)
        for k in range(70, 135, 5):
            kind = "put" if k < fwd else "call"
            vol = _smile(math.log(k / fwd), t) + bump.get((days, float(k)), 0.0)
            price = _bs(kind, S, k, t, R, Q, vol)
            quotes.append({"expiry": (AS_OF + dt.timedelta(days=days)).isoformat(),
                           "strike": k, "kind": kind, "bid": price * 0.99,
                           "ask": price * 1.01})
    return quotes


def test_iv_anomalies_find_the_one_mispriced_quote(client: TestClient, key: str) -> None:
    quotes = _chain({(30, 110.0): 0.06})
    quotes.append({"expiry": "2024-02-01", "strike": 80, "kind": "call", "bid": 1.0,
                   "ask": 1.0})  # below a deep in-the-money call's intrinsic value
    r = client.post("/v1/options/iv-anomalies", headers=auth(key), json={
        "spot": S, "as_of": AS_OF.isoformat(), "rate": R, "dividend_yield": Q,
        "k": 3, "quotes": quotes})
    assert r.status_code == 200, r.text
    out = r.json()
    assert [(a["expiry"], a["strike"]) for a in out["anomalies"]] == [("2024-02-01", 110)]
    assert out["anomalies"][0]["z"] > 3
    for row in out["quotes"][:-1]:
        t = (dt.date.fromisoformat(row["expiry"]) - AS_OF).days / 365
        fwd = S * math.exp((R - Q) * t)
        bumped = 0.06 if (row["expiry"], row["strike"]) == ("2024-02-01", 110) else 0.0
        assert row["iv"] == pytest.approx(_smile(math.log(row["strike"] / fwd), t) + bumped,
                                          abs=1e-6)
        if not bumped:
            assert abs(row["fitted_iv"] - row["iv"]) < 1e-6  # the fit recovers the smile
    assert out["quotes"][-1]["iv"] is None and "intrinsic" in out["quotes"][-1]["reason"]
    assert all(e["fitted"] for e in out["expiries"])
    assert out["expiries"][0]["coefficients"][1] == pytest.approx(-0.12, abs=1e-5)


def test_iv_anomalies_leave_a_thin_expiry_unfitted(client: TestClient, key: str) -> None:
    quotes = [q for q in _chain({}) if q["expiry"] == "2024-02-01"][:3]
    out = client.post("/v1/options/iv-anomalies", headers=auth(key), json={
        "spot": S, "as_of": AS_OF.isoformat(), "rate": R, "dividend_yield": Q,
        "quotes": quotes}).json()
    assert out["expiries"][0]["fitted"] is False and out["anomalies"] == []
    r = client.post("/v1/options/iv-anomalies", headers=auth(key), json={
        "spot": S, "as_of": "2024-03-01", "quotes": quotes})
    assert r.status_code == 422 and "not after as_of" in r.json()["error"]["message"]


# -- VRP spreads -------------------------------------------------------------------------

SPOT, VOL, RATE = 400.0, 0.2, 0.01
DAY = dt.date(2020, 1, 2)


def _puts() -> list[dict[str, Any]]:
    quotes = []
    for days in (30, 45, 60):
        t = days / 365
        for k in range(300, 420, 5):
            price = _bs("put", SPOT, k, t, RATE, 0.0, VOL)
            quotes.append({"expiry": (DAY + dt.timedelta(days=days)).isoformat(),
                           "strike": k, "bid": round(max(price - 0.05, 0.01), 2),
                           "ask": round(price + 0.05, 2), "bid_size": 40, "ask_size": 40})
    return quotes


def test_spreads_pick_the_strategys_delta_target(client: TestClient, key: str) -> None:
    quotes = _puts()
    r = client.post("/v1/options/spreads", headers=auth(key), json={
        "underlying": "SPY", "spot": SPOT, "as_of": DAY.isoformat(), "realised_vol": 0.15,
        "equity": 100_000, "settings": {"short_delta": 0.2, "width": 10, "rate": RATE},
        "quotes": quotes})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["dte"] == 30  # the expiry closest to target_dte 35 within [25, 50]
    t = 30 / 365
    book = {q["strike"]: q for q in quotes if q["expiry"] == "2020-02-01"}

    def abs_delta(k: float) -> float:
        mid = (book[k]["bid"] + book[k]["ask"]) / 2
        from scipy.optimize import brentq

        iv = brentq(lambda v: _bs("put", SPOT, k, t, RATE, 0.0, v) - mid, 1e-4, 5)
        d1 = (math.log(SPOT / k) + (RATE + iv * iv / 2) * t) / (iv * math.sqrt(t))
        return float(1 - norm.cdf(d1))

    otm = [k for k in book if k < SPOT and k - 10 in book]
    best = min(otm, key=lambda k: (abs(abs_delta(k) - 0.2), -k))
    sel = out["selected"]
    assert sel["short_strike"] == best and sel["long_strike"] == best - 10
    assert sel["short_abs_delta"] == pytest.approx(abs_delta(best), abs=1e-6)
    assert sel["credit"] == pytest.approx((book[best]["bid"] - book[best - 10]["ask"]) * 100)
    assert sel["max_loss"] == pytest.approx(1000 - sel["credit"])
    assert sel["contracts"] == min(math.floor(min(0.02 * 100_000, 5000) / sel["max_loss"]),
                                   40)
    assert "|delta|" in sel["score"]
    assert out["vrp"] == pytest.approx(out["atm_iv"] - 0.15) and out["vrp_ok"] is True
    assert {c["short_strike"] for c in out["candidates"]} == set(otm)


def test_spreads_by_heston_pop_and_bad_settings(client: TestClient, key: str) -> None:
    quotes = [q for q in _puts() if q["expiry"] == "2020-02-01" and q["strike"] >= 340]
    r = client.post("/v1/options/spreads", headers=auth(key), json={
        "spot": SPOT, "as_of": DAY.isoformat(), "quotes": quotes,
        "settings": {"selection": "pop", "target_pop": 0.8, "heston_paths": 4000}})
    assert r.status_code == 200, r.text
    sel = r.json()["selected"]
    assert "(heston)" in sel["score"]
    pop = float(sel["score"].split("PoP ")[1].split()[0])
    assert pop == pytest.approx(sel["pop_lognormal"], abs=0.08)  # same ballpark
    for settings, word in (({"nope": 1}, "nope"), ({"short_delta": 2}, "short_delta"),
                           ({"selection": "vibes"}, "selection")):
        r = client.post("/v1/options/spreads", headers=auth(key), json={
            "spot": SPOT, "as_of": DAY.isoformat(), "quotes": quotes, "settings": settings})
        assert r.status_code == 422 and word in r.json()["error"]["message"], r.text
    r = client.post("/v1/options/spreads", headers=auth(key), json={
        "spot": SPOT, "as_of": "2019-01-01", "quotes": quotes})
    assert r.status_code == 200 and r.json()["selected"] is None
    assert "no quoted expiry" in r.json()["reason"]


# -- Heston probability of profit ----------------------------------------------------------

def test_pop_tends_to_the_lognormal_answer_without_vol_of_vol(client: TestClient, key: str
                                                               ) -> None:
    model = {"v0": 0.04, "kappa": 2.0, "theta": 0.04, "sigma": 1e-3, "rho": -0.5}
    body = {"legs": [{"kind": "put", "strike": 95, "quantity": -1},
                     {"kind": "put", "strike": 85, "quantity": 1}],
            "spot": 100, "t_years": 0.25, "premium": 1.5, "rate": 0.01, "model": model,
            "paths": 40_000, "seed": 5}
    r = client.post("/v1/options/pop", headers=auth(key), json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    # Profit iff S_T > 95 - 1.5 (the long put only caps the loss): lognormal at 20% vol.
    t, vol = 0.25, 0.2
    z = (math.log(100 / 93.5) + (0.01 - vol * vol / 2) * t) / (vol * math.sqrt(t))
    assert out["p_profit"] == pytest.approx(float(norm.cdf(z)), abs=4 * out["stderr"] + 2e-3)
    assert out["pricer"] == "heston" and out["paths"] == 40_000
    direct = build_pricer().probability_of_profit(
        [OptionLeg("put", 95, -1), OptionLeg("put", 85, 1)], 100, 0.25, 1.5, rate=0.01,
        model=model, paths=40_000, seed=5)
    assert out["p_profit"] == direct.p_profit and out["stderr"] == direct.stderr
    single = client.post("/v1/options/pop", headers=auth(key), json={
        **{k: v for k, v in body.items() if k != "legs"},
        "leg": {"kind": "put", "strike": 95, "quantity": -1}}).json()
    assert single["p_profit"] == pytest.approx(out["p_profit"], abs=1e-12)  # same event


@pytest.mark.parametrize("change", [{"model": {"v0": 0.04}}, {"spot": -1},
                                    {"legs": []}, {"leg": None, "legs": None},
                                    {"model": {"v0": 0.04, "kappa": 2, "theta": 0.04,
                                               "sigma": 0.5, "rho": 1.0}},
                                    {"paths": 10**9}])
def test_bad_pop_requests_are_422(client: TestClient, key: str, change: dict[str, Any]
                                  ) -> None:
    body = {"legs": [{"kind": "put", "strike": 95, "quantity": -1}], "spot": 100,
            "t_years": 0.25, "premium": 1.0,
            "model": {"v0": 0.04, "kappa": 2, "theta": 0.04, "sigma": 0.5, "rho": -0.5},
            **change}
    r = client.post("/v1/options/pop", headers=auth(key), json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_request"
