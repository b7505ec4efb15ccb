"""A checkpoint that parses but lacks a key or holds a bad value (hand-edited, damaged) gave
a KeyError or InvalidOperation traceback from a resumed run; it is a ``LedgerError``
naming the file (exit 7)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from argus_core.cli import cli
from argus_core.errors import LedgerError

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "demo.toml"


@pytest.mark.parametrize("damage", [lambda s: s.pop("broker"),
                                    lambda s: s["risk"].update(peak_equity="lots"),
                                    # a list where a component reads a table: an
                                    # AttributeError ([].get) escaped as a traceback
                                    lambda s: s["strategies"].update(ma_cross=[])])
def test_a_damaged_checkpoint_is_a_ledger_error(tmp_path: Path, damage) -> None:  # type: ignore[no-untyped-def]
    from argus_core.config import load_config
    from argus_core.ledger import Ledger
    from argus_core.runner import CHECKPOINT, Runner

    run = tmp_path / "run"
    config = load_config(EXAMPLE)
    Runner(config, run).run_sync()
    with Ledger.in_dir(run) as ledger:
        _seq, _ts, state = ledger.load_checkpoint(CHECKPOINT)  # type: ignore[misc]
        damage(state)
        ledger.conn.execute("update checkpoints set state_json = ? where name = ?",
                            (json.dumps(state), CHECKPOINT))
    with pytest.raises(LedgerError, match=r"argus\.db: checkpoint 'runner' cannot be restored"):
        Runner(config, run).run_sync()
    result = CliRunner().invoke(cli, ["run", "--config", str(EXAMPLE), "--run-dir", str(run)])
    assert result.exit_code == LedgerError.exit_code, result.output
