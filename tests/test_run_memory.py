"""What a run keeps per order does not grow with its orders: the paper broker forgets an
order once the engine has booked its end, and the risk context keeps the newest
``RECENT_ORDERS`` order times, as a checkpoint does (a resumed run sees the same)."""

from __future__ import annotations

from pathlib import Path

from argus_core.config import parse_config
from argus_core.interfaces import RECENT_ORDERS
from argus_core.runner import Runner

START = 1_600_000_000


def _zigzag(path: Path, n: int) -> Path:
    """Closes that turn every 3 bars: an SMA(2)/SMA(3) cross trades all the time."""
    lines, price = [], 100.0
    for i in range(n):
        price += 1.0 if (i // 3) % 2 == 0 else -1.0
        lines.append(f"{START + 3600 * i},{price},{price + 0.5},{price - 0.5},{price},50\n")
    path.write_text("".join(lines))
    return path


def _run(tmp: Path, name: str, max_events: int | None = None) -> Runner:
    config = parse_config({
        "argus": {"plugins": [], "mode": "replay"},
        "run": {"venue": "replay", "strategies": ["ma_cross"], "risk_checks": [],
                "checkpoint_every_events": 250},
        "plugins": {"replay": {"bars_csv": str(tmp / "bars.csv"), "symbol": "X/USD",
                               "bar_seconds": 3600},
                    "example": {"fast": 2, "slow": 3}},
    }, tmp / "run.toml")
    runner = Runner(config, tmp / name, max_events=max_events)
    runner.run_sync()
    return runner


def test_a_runs_order_records_stay_bounded_and_resume_alike(tmp_path: Path) -> None:
    _zigzag(tmp_path / "bars.csv", 9_000)
    straight = _run(tmp_path, "straight")
    assert straight.engine.n_orders > 2 * RECENT_ORDERS  # the bound is reached, twice over
    assert straight.broker.closed == {}  # every ended order booked and forgotten
    times = straight.risk.ctx.order_times_ns
    assert len(times) == RECENT_ORDERS and times == sorted(times)
    _run(tmp_path, "resumed", max_events=4_501)
    resumed = _run(tmp_path, "resumed")
    assert resumed.resumed_from is not None
    assert resumed.engine.n_orders == straight.engine.n_orders
    assert resumed.risk.ctx.order_times_ns == times
