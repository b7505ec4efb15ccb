"""The numba kernel of the compiled sweep path: ``ma_cross`` over a grid of (fast, slow).

It replays the event loop's rules for one bar series and many parameter points, with
money in integers so the fills are the loop's to the last digit (see
:mod:`argus_lab.compiled` for what is modelled and why each step is exact):

* prices in ticks, quantities in units of 1e-8 (``q8``), cash and equity in
  ``U = 10**-(pt + 8)`` of the quote currency, where ``10**-pt`` is the tick: every
  notional ``price x quantity`` is then a whole number of U, exactly as the loop's
  Decimals hold it;
* products that could pass 64 bits are split (``_mul_div_floor``) or compared by
  :func:`_sign_of_difference` (a float estimate, then the exact 64-bit wrap-around
  difference when the estimate is too close to call);
* the moving averages are decided from exact integer window sums when those are
  clear, else by summing the window's floats left to right as CPython 3.11's ``sum``
  does, so ties and near-ties go the loop's way.

A point whose result the kernel cannot vouch for (the drawdown kill switch, the daily
loss limit or gross exposure might bind; an avg price not exact enough to call a
loss; 64-bit headroom; its fill buffer full) gets a non-zero status and the caller
runs it on the event loop instead.
"""

from __future__ import annotations

import numba
import numpy as np

OK = 0
FULL = 1  # fill/trip buffers too small: rerun with room
NEAR_KILL = 2  # drawdown came within reach of the kill switch
DAILY_LOSS = 3  # the daily loss limit might have vetoed a buy
GROSS = 4  # the gross exposure check might have shrunk a buy
OVERFLOW = 5  # amounts beyond the kernel's 64-bit headroom
AMBIGUOUS_LOSS = 6  # a trade's win/loss too close to call with an inexact average price

STATUS_REASONS = {
    FULL: "fill buffer full",
    NEAR_KILL: "the drawdown came within reach of the max_drawdown kill switch (the kernel "
               "does not model the flattening that follows)",
    DAILY_LOSS: "the daily_loss_limit check might have vetoed a buy",
    GROSS: "the gross_exposure check might have shrunk a buy",
    OVERFLOW: "amounts beyond the kernel's 64-bit integer headroom",
    AMBIGUOUS_LOSS: "a round trip's win or loss was too close to call exactly",
}

LEVELS = 5  # the paper broker's SYNTHETIC_LEVELS
_LIMIT = 4_000_000_000_000_000_000  # headroom kept below 2**63 for cash and equity
DAY_NS = 86_400 * 10**9


@numba.njit(cache=True)
def _mul_div_floor(x: int, num: int, den: int) -> int:
    """``floor(x * num / den)`` for ``x >= 0``, ``num >= 0``, ``den > 0`` without forming
    ``x * num`` (the caller keeps ``num * den`` below 2**63)."""
    a = x // den
    b = x - a * den
    return a * num + (b * num) // den


@numba.njit(cache=True)
def _mul_div_half_even(x: int, num: int, den: int) -> int:
    """``x * num / den`` rounded half to even (Decimal's default), ``x >= 0``."""
    a = x // den
    b = x - a * den
    t = b * num
    q = t // den
    r = t - q * den
    res = a * num + q
    if 2 * r > den or (2 * r == den and res % 2 == 1):
        res += 1
    return res


@numba.njit(cache=True)
def _sign_of_difference(a: int, b: int, c: int, d: int) -> int:
    """Sign of ``a*b - c*d`` for non-negative 64-bit ints whose products may pass 2**63.

    Floats call it when the difference is clearly away from zero; otherwise it is below
    2**62 in size and the wrap-around 64-bit difference is exact."""
    ab = float(a) * float(b)
    cd = float(c) * float(d)
    diff = ab - cd
    if abs(diff) > 1e-12 * max(ab, cd) + 1.0:
        return 1 if diff > 0 else -1
    w = a * b - c * d  # wraps modulo 2**64; the true value is small, so this is it
    return 1 if w > 0 else (-1 if w < 0 else 0)


@numba.njit(cache=True)
def _want_long(close: np.ndarray, prefix: np.ndarray, b: int, fast: int, slow: int) -> bool:
    """``ma_cross``'s ``fast SMA > slow SMA`` at bar ``b``, as its Python floats decide it."""
    wf = prefix[b + 1] - prefix[b + 1 - fast]
    ws = prefix[b + 1] - prefix[b + 1 - slow]
    d = wf * slow - ws * fast  # exact: (avg_fast - avg_slow) * fast * slow, in ticks
    if d != 0:
        # |avg_fast - avg_slow| against a bound on how far the loop's float averages can
        # sit from the exact ones (representation and left-to-right summation errors,
        # (w + 1) units of 2**-52 each, here 4x over), both scaled by fast * slow.
        gap = abs(float(d))
        err = (float(wf) * (fast + 1) * slow + float(ws) * (slow + 1) * fast) * 2.0**-50
        if gap > err:
            return d > 0
    # Too close to call (or an exact tie): sum the floats exactly as the loop does.
    s_fast = 0.0
    for i in range(b + 1 - fast, b + 1):
        s_fast += close[i]
    s_slow = 0.0
    for i in range(b + 1 - slow, b + 1):
        s_slow += close[i]
    return s_fast / fast > s_slow / slow


@numba.njit(cache=True)
def _drawdown_near(peak: float, equity: float, limit: float) -> bool:
    return peak > 0 and (peak - equity) / peak > limit - 1e-9


@numba.njit(cache=True, parallel=True)
def simulate_grid(close: np.ndarray, close_t: np.ndarray, ts: np.ndarray,
                  buy_px: np.ndarray, sell_px: np.ndarray, depth8: np.ndarray,
                  fasts: np.ndarray, slows: np.ndarray, ints: np.ndarray,
                  floats: np.ndarray, want_equity: bool, capacity: int,
                  equity8: np.ndarray, fills: np.ndarray, n_fills: np.ndarray,
                  trips: np.ndarray, n_trips: np.ndarray, totals: np.ndarray,
                  status: np.ndarray) -> None:
    """Run every (fast, slow) point over the bars, in parallel over points.

    ``ints``: cash0_U, lot8, min8, pt_scale (10**pt), fee_num, fee_den, frac_num,
    frac_den, per_play (0/1), pp_num, pp_den, consec (0/1), max_losses, latency_ns.
    ``floats``: kill-switch drawdown limit (<0: off), daily loss fraction (<0: off),
    gross exposure multiple (<0: off).
    Outputs per point: ``equity8`` (equity rows in 1e-8, when ``want_equity``),
    ``fills[p, k] = (bar, side, price ticks, q8, fee 1e-8)``, trip P&L in U, ``totals``
    = (cash U, position q8, fees 1e-8, notional U high part / 10**12, low part), status.
    """
    n = close.shape[0]
    prefix = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        prefix[i + 1] = prefix[i] + close_t[i]
    cash0, lot8, min8, pt_scale = ints[0], ints[1], ints[2], ints[3]
    fee_num, fee_den, frac_num, frac_den = ints[4], ints[5], ints[6], ints[7]
    per_play, pp_num, pp_den = ints[8], ints[9], ints[10]
    consec, max_losses, latency_ns = ints[11], ints[12], ints[13]
    kill, daily, gross_mult = floats[0], floats[1], floats[2]
    chunk = 10**12
    for p in numba.prange(fasts.shape[0]):
        fast, slow = fasts[p], slows[p]
        cash, pos = cash0, 0
        mark = 0  # ticks; valid while pos != 0
        long_ = False
        pend_side, pend_q, pend_at = 0, 0, 0
        peak = float(cash0)
        st = OK
        nf, nt = 0, 0
        fee_total, notional_hi, notional_lo = 0, 0, 0
        trip_cash = 0
        avg_t, avg_exact, avg_f = 0, True, 0.0  # the position's average price (ticks)
        losses, reducing = 0, False
        group_open, group_ts, group_sign = False, 0, 0
        group_pq, group_q = 0, 0
        group_fv = 0.0
        day, day_start = -1, 0.0
        for b in range(n):
            if st != OK:
                break
            ct = close_t[b]
            if pos != 0:
                mark = ct
                if kill >= 0:
                    eq = float(cash + pos * mark)
                    peak = max(peak, eq)
                    if _drawdown_near(peak, eq, kill):
                        st = NEAR_KILL
                        break
            if pend_side != 0 and ts[b] >= pend_at:
                side, rem = pend_side, pend_q
                pend_side = 0
                for k in range(LEVELS):
                    if rem <= 0:
                        break
                    q = min(rem // lot8 * lot8, depth8[b])
                    if q <= 0:
                        continue
                    px = buy_px[b, k] if side > 0 else sell_px[b, k]
                    notional = px * q
                    fee8 = _mul_div_half_even(notional, fee_num, fee_den)
                    cash -= side * notional + fee8 * pt_scale
                    rem -= q
                    fee_total += fee8
                    notional_lo += notional
                    notional_hi += notional_lo // chunk
                    notional_lo = notional_lo % chunk
                    if nf < capacity:
                        fills[p, nf, 0] = b
                        fills[p, nf, 1] = side
                        fills[p, nf, 2] = px
                        fills[p, nf, 3] = q
                        fills[p, nf, 4] = fee8
                    nf += 1
                    # consecutive_losses.on_fill: a fill at a new time closes the group.
                    if consec and group_open and group_ts != ts[b]:
                        if group_sign != 0:
                            losses = losses + 1 if group_sign < 0 else 0
                            if losses >= max_losses:
                                reducing = True
                        group_open = False
                    before = pos
                    if before == 0:
                        trip_cash = 0
                    trip_cash -= side * notional + fee8 * pt_scale
                    if side > 0:
                        pos += q
                        if before == 0:
                            avg_t, avg_exact, avg_f = px, True, float(px)
                            mark = px  # a position opened from flat is marked at its fill
                        else:
                            num = avg_t * before + px * q
                            if avg_exact and num % pos == 0:
                                avg_t = num // pos
                                avg_f = float(avg_t)
                            else:
                                avg_f = (avg_f * before + float(px) * q) / pos
                                avg_exact = False
                    else:
                        pos -= q
                        if consec:
                            if avg_exact:
                                delta_sign = 1 if px > avg_t else (-1 if px < avg_t else 0)
                            else:
                                delta_sign = 2  # decided on the group's total below
                            if delta_sign != 0:
                                if not group_open:
                                    group_open, group_pq, group_q, group_fv = True, 0, 0, 0.0
                                group_ts = ts[b]
                                group_pq += px * q
                                group_q += q
                                group_fv += (float(px) - avg_f) * q
                                if avg_exact:
                                    group_sign = _sign_of_difference(group_pq, 1, avg_t,
                                                                     group_q)
                                elif abs(group_fv) > 1e-9 * float(group_pq):
                                    group_sign = 1 if group_fv > 0 else -1
                                else:
                                    st = AMBIGUOUS_LOSS
                    if pos == 0:
                        if nt < capacity:
                            trips[p, nt] = trip_cash
                        nt += 1
                    if abs(cash) > _LIMIT:
                        st = OVERFLOW
                    if kill >= 0:
                        eq = float(cash + pos * mark) if pos != 0 else float(cash)
                        peak = max(peak, eq)
                        if _drawdown_near(peak, eq, kill):
                            st = NEAR_KILL
                if st != OK:
                    break
            if pos != 0:
                mark = ct
            equity_u = cash + pos * ct
            if equity_u < 0 or equity_u > _LIMIT:
                st = OVERFLOW
                break
            if want_equity:
                equity8[p, b] = _mul_div_half_even(equity_u, 1, pt_scale)
            if kill >= 0:
                eq = float(equity_u)
                peak = max(peak, eq)
                if _drawdown_near(peak, eq, kill):
                    st = NEAR_KILL
                    break
            if b + 1 < slow:
                continue
            want = _want_long(close, prefix, b, fast, slow)
            if want == long_:
                continue
            long_ = want
            if not want:
                if pos > 0:
                    pend_side, pend_q, pend_at = -1, pos, ts[b] + latency_ns
                continue
            # A buy: fixed_fraction of the book's equity at the bar's close, on the lot.
            if equity_u <= 0:
                continue
            q = _mul_div_floor(equity_u, frac_num, frac_den * ct) // lot8 * lot8
            if q < min8 or q <= 0:
                continue  # sized to 0: no risk check runs
            final = q
            veto = reducing
            if per_play and q * ct > _mul_div_floor(equity_u, pp_num, pp_den):
                shrunk = _mul_div_floor(equity_u, pp_num, pp_den * ct)
                if shrunk <= 0:
                    veto = True
                final = min(final, shrunk)
            if consec:
                if group_open:
                    if group_sign != 0:
                        losses = losses + 1 if group_sign < 0 else 0
                        if losses >= max_losses:
                            reducing = True
                    group_open = False
                if losses >= max_losses:
                    veto = True
            eq = float(equity_u)
            if kill >= 0:
                peak = max(peak, eq)
                if _drawdown_near(peak, eq, kill):
                    st = NEAR_KILL
                    break
            if daily >= 0:
                today = ts[b] // DAY_NS
                if today != day:
                    day, day_start = today, eq
                if day_start > 0 and day_start - eq > day_start * daily * (1 - 1e-9):
                    st = DAILY_LOSS
                    break
            if gross_mult >= 0:
                room = eq * gross_mult - abs(float(pos * ct))
                if float(q * ct) > room * (1 - 1e-9):
                    st = GROSS
                    break
            if not veto and final > 0:
                pend_side, pend_q, pend_at = 1, final, ts[b] + latency_ns
        if st == OK and (nf > capacity or nt > capacity):
            st = FULL
        n_fills[p] = nf
        n_trips[p] = nt
        totals[p, 0] = cash
        totals[p, 1] = pos
        totals[p, 2] = fee_total
        totals[p, 3] = notional_hi
        totals[p, 4] = notional_lo
        status[p] = st
