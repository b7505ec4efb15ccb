"""The numba kernel: a joint walk of every basket's leg books over a packed level array.

Book rows are packed level-major: row ``r``'s levels are ``prices[:nlev[r], r]`` /
``sizes[:nlev[r], r]``, best level first (asks ascending for buy legs, bids descending
for sell legs), so the first levels of every row, which most walks read alone, lie
together in memory.
A basket is the CSR slice ``leg_rows[leg_start[b]:leg_start[b + 1]]``; only the
baskets listed in ``selected`` are walked (the others' outputs are left as they were,
so a scan re-walks just the baskets whose books changed).

Rows may be packed partially: ``more[r]`` says book row ``r`` has levels beyond the
``nlev[r]`` packed (most walks stop at the best level, so the scanner packs a few
levels first).  A walk that runs off the end of such a row stops and sets
``out_short[b]``: its result is incomplete, and the scanner packs those rows deeper and
walks the basket again.

Walk: every leg starts at its best level.  The marginal cost of one more
basket unit is the sum of the legs' current prices plus their per-share
taker fees (``level_fees[level, r]``: the venue's ``FeeSchedule.unit_fee`` at that
level's price, packed by the scanner -- the kernel holds no fee formula).
While it is below the payout (above, for a sell basket), take the largest
step every leg can fill at its current level -- the smallest remaining
size -- then advance the legs whose level is used up.  Because each leg's
price only worsens, the marginal cost only rises, so stopping at the first
unprofitable step gives the maximum profitable size.  That holds with fees
as long as price plus fee (minus fee, selling) moves with the price, i.e. a
fee changes by less than the price does between levels: Polymarket's
``rate * p(1-p)`` with rate < 1 does.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def walk_baskets(prices: np.ndarray, sizes: np.ndarray, level_fees: np.ndarray,
                 nlev: np.ndarray, more: np.ndarray,
                 usable: np.ndarray, leg_start: np.ndarray, leg_rows: np.ndarray,
                 payout: np.ndarray, is_sell: np.ndarray, selected: np.ndarray,
                 max_qty: np.ndarray, out_qty: np.ndarray, out_value: np.ndarray,
                 out_fee: np.ndarray, out_depth: np.ndarray, out_short: np.ndarray) -> int:
    """Walk the ``selected`` baskets; returns how many of them have a profitable size.

    Outputs per walked basket ``b``: ``out_qty`` units, ``out_value`` = sum of leg
    prices x units, ``out_fee`` = taker fees; per leg ``k``: ``out_depth[k]``
    = index of the deepest level used; ``out_short[b]``: the walk ran off the packed
    levels of a row with ``more`` levels (the outputs are then a lower bound).
    """
    max_legs = 0
    for b in selected:
        width = leg_start[b + 1] - leg_start[b]
        if width > max_legs:
            max_legs = width
    ptr = np.zeros(max_legs, dtype=np.int64)
    rem = np.zeros(max_legs, dtype=np.float64)
    hits = 0
    for b in selected:
        s = leg_start[b]
        e = leg_start[b + 1]
        out_qty[b] = 0.0
        out_value[b] = 0.0
        out_fee[b] = 0.0
        out_short[b] = False
        ok = e > s
        for k in range(s, e):
            r = leg_rows[k]
            out_depth[k] = -1
            if not usable[r] or nlev[r] == 0:
                ok = False
        if not ok:
            continue
        for j in range(e - s):
            ptr[j] = 0
            rem[j] = sizes[0, leg_rows[s + j]]
        sell = is_sell[b]
        qty = 0.0
        value = 0.0
        fees = 0.0
        cap = max_qty[b]
        while True:
            # every leg at a level with size left: a spent level, or one packed empty (no
            # book holds one; the reference skips it too), moves the leg on
            exhausted = False
            for j in range(e - s):
                r = leg_rows[s + j]
                while rem[j] <= 1e-12:
                    ptr[j] += 1
                    if ptr[j] >= nlev[r]:
                        exhausted = True
                        if more[r]:
                            out_short[b] = True
                        break
                    rem[j] = sizes[ptr[j], r]
                if exhausted:
                    break
            if exhausted:
                break
            unit = 0.0
            unit_fee = 0.0
            step = np.inf
            for j in range(e - s):
                r = leg_rows[s + j]
                p = prices[ptr[j], r]
                unit += p
                unit_fee += level_fees[ptr[j], r]
                if rem[j] < step:
                    step = rem[j]
            profitable = unit - unit_fee > payout[b] if sell else unit + unit_fee < payout[b]
            if not profitable:
                break
            if cap > 0.0 and qty + step > cap:
                step = cap - qty
            qty += step
            value += unit * step
            fees += unit_fee * step
            for j in range(e - s):
                out_depth[s + j] = ptr[j]
                rem[j] -= step
            if cap > 0.0 and qty >= cap:
                break
        out_qty[b] = qty
        out_value[b] = value
        out_fee[b] = fees
        if qty > 0.0:
            hits += 1
    return hits
