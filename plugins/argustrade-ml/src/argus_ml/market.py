"""The binary up/down market model used when no market quotes were recorded.

Stated and conservative: a contract paying 1 if the close ``h`` bars ahead is higher
(``up``) or not (``down``) trades at a fair 0.5 plus ``half_spread`` (we always pay the
ask), plus a fee of ``fee_rate`` times the price paid.  Real up/down markets move their
price with information; pricing every window at 0.5 ignores that, so the edge measured
here is an upper bound for a market that already knows what the features know.  The
report and the README say so.
"""

from __future__ import annotations

import math

import attrs
import numpy as np

from argus_core import kelly_binary
from argus_ml.calibration import CLIP


@attrs.frozen
class BinaryMarket:
    """Ask price and fee of the synthetic up/down contracts."""

    half_spread: float = 0.01
    fee_rate: float = 0.02

    @property
    def ask(self) -> float:
        """Price paid for either side."""
        return 0.5 + self.half_spread

    @property
    def cost(self) -> float:
        """Price plus fee per contract."""
        return self.ask * (1.0 + self.fee_rate)

    def edges(self, p_up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Expected profit per contract of buying ``up`` and of buying ``down``."""
        p = np.asarray(p_up, dtype=np.float64)
        return p - self.cost, (1.0 - p) - self.cost

    def decide(self, p_up: np.ndarray, threshold: float) -> np.ndarray:
        """+1 buy up, -1 buy down, 0 no bet: the side whose edge clears ``threshold``."""
        up, down = self.edges(p_up)
        return np.where(up > threshold, 1, np.where(down > threshold, -1, 0))

    def pnl(self, side: np.ndarray, outcome_up: np.ndarray) -> np.ndarray:
        """P&L per contract of each bet (0 where no bet)."""
        won = ((side == 1) & (outcome_up == 1)) | ((side == -1) & (outcome_up == 0))
        return np.where(side == 0, 0.0, np.where(won, 1.0, 0.0) - self.cost)


def kelly_fraction(p_win: float, cost: float) -> float:
    """Full binary Kelly stake as a share of wealth (:func:`argus_core.kelly_binary`, the
    core's ``kelly`` sizer's formula); no bet when the contract's all-in cost leaves (0, 1).

    ``p_win`` is first held inside ``[CLIP, 1 - CLIP]`` (the calibration's clip): at
    ``p_win = 1`` Kelly stakes everything (``(1 - c) / (1 - c)``), and no forecaster's 1
    is a certainty; a ``p_win`` that is not a number stakes nothing."""
    if not (0.0 < cost < 1.0) or not math.isfinite(p_win):
        return 0.0
    return kelly_binary(min(max(p_win, CLIP), 1.0 - CLIP), cost)
