"""Labels: forward returns and binary up/down outcomes over a horizon of bars.

The label of decision bar ``t`` with horizon ``h`` is settled by bar ``t + h``: the
forward log return ``log(close[t+h] / close[t])`` and the binary outcome
``close[t+h] > close[t]`` (a flat window counts as *down*, as an up/down market that
pays "up" only on a strict rise).  Each label records when it became known
(``end_ts_ns``), so training purges every training row whose label window reaches
into a test block, and embargoes the rows right after it.  Horizons are in bars; a
gap in the data stretches a window in time but never makes it look at an unknown bar.
"""

from __future__ import annotations

import attrs
import numpy as np

from argus_core import DataError
from argus_ml.bars import BarColumns

KINDS = ("up", "return")


@attrs.frozen
class LabelSpec:
    """What to predict: ``up`` (1.0 if the close ``horizon_bars`` later is higher, else 0.0)
    or ``return`` (that forward log return)."""

    kind: str = attrs.field(default="up", validator=attrs.validators.in_(KINDS))
    horizon_bars: int = attrs.field(default=1, validator=attrs.validators.ge(1))

    @property
    def key(self) -> str:
        """``up@1h``-style name: kind and horizon in bars."""
        return f"{self.kind}@{self.horizon_bars}"


@attrs.frozen
class Labels:
    """Per decision bar: the label (NaN where the window runs past the data), the forward
    log return, and the time the label became known (-1 where unknown)."""

    values: np.ndarray
    forward_return: np.ndarray
    end_ts_ns: np.ndarray


def make_labels(bars: BarColumns, spec: LabelSpec) -> Labels:
    """Labels of every bar of ``bars`` under ``spec``."""
    n, h = len(bars), spec.horizon_bars
    if n == 0:
        raise DataError("no bars to label")
    fwd = np.full(n, np.nan)
    end = np.full(n, -1, dtype=np.int64)
    if n > h:
        fwd[:-h] = np.log(bars.close[h:] / bars.close[:-h])
        end[:-h] = bars.ts_ns[h:]
    if spec.kind == "up":
        values = np.where(np.isnan(fwd), np.nan, (fwd > 0).astype(np.float64))
    else:
        values = fwd.copy()
    return Labels(values, fwd, end)


def horizon_rows(ts_ns: np.ndarray, end_ts_ns: np.ndarray) -> int:
    """The purge distance in rows: how many rows after its own the furthest label window
    reaches (``h`` when rows are consecutive bars)."""
    if ts_ns.size == 0:
        return 0
    reach = np.searchsorted(ts_ns, end_ts_ns, side="left") - np.arange(ts_ns.size)
    return int(max(reach.max(), 0))
