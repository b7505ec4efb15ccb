"""Helpers shared by the core tests (importable: tests/ is on pytest's pythonpath)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from click.testing import CliRunner, Result

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_BARS = ROOT / "examples" / "data" / "kraken_XBTUSD_60.csv"


def demo_toml(bars: Path, *, start: str = "2022-01-01", end: str | None = None,
              extra: str = "", checkpoint_every: int = 200) -> str:
    """A demo-like config over the bundled bars."""
    end_line = f'end = "{end}"' if end else ""
    return f"""
[argus]
plugins = []
mode = "replay"
seed = 1

[run]
venue = "replay"
strategies = ["ma_cross"]
sizer = "fixed_fraction"
checkpoint_every_events = {checkpoint_every}

[paper]
slippage_bps = "1"

[plugins.replay]
bars_csv = "{bars}"
start = "{start}"
{end_line}

[plugins.example]
fast = 5
slow = 20

[plugins.risk]
max_consecutive_losses = 1000
max_drawdown_fraction = "0.9"
daily_loss_fraction = "0.9"
max_orders_per_minute = 1000
{extra}
"""


# -- the command line: run `argus` as a user would, read a refusal's error: line -------
def invoke_argus(args: Sequence[str]) -> Result:
    """``argus ARGS...`` in-process (``prog_name`` ``argus``, as usage errors name it)."""
    from argus_core.cli import cli

    return CliRunner().invoke(cli, list(args), prog_name="argus")


def error_line(result: Result, code: int) -> str:
    """The text of the single ``error: ...`` line of a refused command, after checking it
    exited with ``code`` and printed no traceback."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    (line,) = [ln for ln in result.output.splitlines() if ln.startswith("error: ")]
    return line.removeprefix("error: ")
