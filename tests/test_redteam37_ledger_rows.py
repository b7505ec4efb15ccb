"""Red team (ledger): checkpoints round-trip exactly or are refused, damaged rows are a
``LedgerError`` naming the file and row, secrets stay out of JSON columns, and a SIGKILL
between a write and its commit loses nothing committed and keeps nothing uncommitted.

Found: a Decimal or mixed keys in a checkpoint were a bare TypeError (NaN and infinity
are kept, as ``NaN``/``Infinity``: json.loads reads them and a warming indicator holds
one); a
checkpoint row with a number past int()'s digits, nesting past the recursion limit, a
list or a text ``seq`` was a ValueError/RecursionError traceback or handed on as state;
text where a number belongs in ``orders``/``fills`` was ``InvalidOperation
[<class 'decimal.ConversionSyntax'>]`` (or a DataError, exit 4) from a resumed run's
reads; a key written in an opportunity's or an intent's text, inside JSON's escaped
quotes (and a revealed secret in an opportunity's), was stored as it was.
"""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from argus_core.account import Account
from argus_core.errors import LedgerError
from argus_core.ledger import Ledger
from argus_core.models import Side
from argus_core.secrets import forget_all, remember


@pytest.fixture
def ledger(tmp_path: Path) -> Any:
    with Ledger.in_dir(tmp_path) as opened:
        yield opened


@pytest.mark.parametrize(("state", "where"), [
    ({"cash": Decimal("1.10")}, "state.cash is Decimal '1.10'"),
    ({"by_id": {1: "a", "b": 2}}, "state.by_id has the key 1, not a text"),
    ({"x": {1, 2}}, "state.x is set"),
    # every key an int: json wrote them as texts and a restart read {"1": ...} back
    ({"by_id": {1: "a", 2: "b"}}, "state.by_id has the key 1, not a text"),
    ({"rows": [[{"k": {3: 1.0}}]]}, r"state.rows\[0\]\[0\].k has the key 3, not a text"),
    ({"x": {True: 1}}, "state.x has the key True, not a text"),
    ({"n": collections.defaultdict(int, {7: 1})}, "state.n has the key 7, not a text"),
])
def test_a_checkpoint_that_is_not_json_is_refused(ledger: Ledger, state: dict[str, Any],
                                                  where: str) -> None:
    with ledger.transaction(), pytest.raises(
            LedgerError, match=rf"argus\.db: checkpoint 'runner' cannot be stored: {where}"):
        ledger.save_checkpoint("runner", 1, 2, state)
    assert ledger.load_checkpoint("runner") is None


@pytest.mark.parametrize(("row", "why"), [
    ((1, 2, '{"a": ' + "1" * 5000 + "}"), "Exceeds the limit|more than 4,300 digits"),
    # (refused before json.loads recurses: a raised recursion limit made it a segfault)
    ((1, 2, "[" * 100_000 + "]" * 100_000), "nested deeper than 200 levels"),
    ((1, 2, "[1, 2]"), "a state of list"),
    ((1, 2, "null"), "a state of NoneType"),
    (("abc", 2, "{}"), "seq 'abc'"),
    ((1, "later", "{}"), "ts_ns 'later'"),
    ((1, 2, "{not json"), "Expecting property name"),
])
def test_a_damaged_checkpoint_row_is_a_ledger_error(ledger: Ledger, row: tuple[Any, ...],
                                                    why: str) -> None:
    ledger.conn.execute("insert into checkpoints values ('runner', ?, ?, ?)", row)
    with pytest.raises(LedgerError, match=rf"argus\.db: checkpoint 'runner' is corrupt: .*{why}"):
        ledger.load_checkpoint("runner")


def test_checkpoints_round_trip_exactly(ledger: Ledger) -> None:
    account = Account(Decimal("1000.000000000000000000000001"))
    account.last_price["é-🙂"] = Decimal("0.123456789012345678901234567")
    state = {"account": account.get_state(), "n": 2**200, "neg": -(10**4000),
             "text": "naïve \u202e \ud800 \x00 🙂", "f": 0.1, "e": 1e-300, "nested": [[{}]]}
    with ledger.transaction():
        ledger.save_checkpoint("runner", 7, 2**62, state)
    seq, ts, back = ledger.load_checkpoint("runner") or (None, None, None)
    assert (seq, ts, back) == (7, 2**62, state)
    restored = Account(Decimal(0))
    restored.set_state(back["account"])
    assert restored.get_state() == account.get_state()


_ORDER = ("insert into orders (client_order_id, run_id, venue, instrument_id, side, quantity,"
          " order_type, time_in_force, strategy, ts_ns, status, filled_quantity) values"
          " (:client_order_id, 'r', 'v', 'i', :side, :quantity, 'limit', 'gtc', 's', :ts_ns,"
          " :status, :filled_quantity)")
_GOOD = {"client_order_id": "run-1", "side": "buy", "quantity": "1", "ts_ns": 1,
         "status": "open", "filled_quantity": "0"}


@pytest.mark.parametrize(("column", "bad", "why"), [
    ("quantity", "abc", "'abc' is not a (decimal )?number"),
    ("quantity", "NaN", "'NaN' is not a (decimal )?number|not finite|NaN"),
    ("filled_quantity", "1e999999999", "out of range"),
    ("side", "sideways", "'sideways' is not a valid Side"),
    ("status", "weird", "'weird' is not a valid OrderStatus"),
    ("ts_ns", "x", "ts_ns 'x' is not an integer"),
])
def test_a_damaged_order_row_is_a_ledger_error(ledger: Ledger, column: str, bad: Any,
                                               why: str) -> None:
    ledger.conn.execute(_ORDER, {**_GOOD, column: bad})
    readers = [lambda: ledger.venue_resume("v"), ledger.working_quantities,
               lambda: ledger.working_on_side("i", "buy"), lambda: ledger.working_orders_of("s"),
               lambda: ledger.order_status("run-1")]
    failed = 0
    for read in readers:
        try:
            read()
        except LedgerError as exc:
            assert str(ledger.path) in str(exc) and "damaged orders" in str(exc)
            assert re.search(why, str(exc)), str(exc)
            failed += 1
    assert failed  # every reader that met the row said so (none raised anything else)


def test_a_damaged_fill_or_book_row_is_a_ledger_error(ledger: Ledger) -> None:
    ledger.conn.execute(_ORDER, _GOOD)
    ledger.conn.execute("insert into fills values ('f1', 'run-1', 'v', 'i', 'buy', '1', 'zz',"
                        " 'no fee', 'maker', 1)")
    ledger.conn.execute("insert into book_rows values (5, 'not json')")
    for read, why in [(lambda: ledger.venue_resume("v"), "'no fee' is not a decimal number"),
                      (lambda: ledger.filled_quantity("run-1", Side.BUY),
                       "'zz' is not a decimal number"),
                      (lambda: ledger.basket_fills("b"), None),
                      (lambda: ledger.last_book_rows(["a"]), "Expecting value")]:
        if why is None:
            read()
            continue
        with pytest.raises(LedgerError, match=rf"argus\.db: a damaged .*{why}"):
            read()


@pytest.fixture
def secret() -> Any:
    remember("RevealedKey-0123456789")
    yield "RevealedKey-0123456789"
    forget_all()


def test_keys_inside_json_texts_never_reach_the_ledger(ledger: Ledger, secret: str) -> None:
    said = (f'venue said: {{"secret": "abcdefgh123456"}} with {secret}, '
            f'Authorization: "Bearer {"z" * 24}"')
    body = json.dumps({"legs": [{"note": said}], "reason": said}, sort_keys=True)
    with ledger.transaction():
        ledger.insert_opportunity("opp-1", "scan", 1, "k", Decimal(1), True, body)
        ledger.record_risk_event(1, "check", "veto", said, intent_json=body)
    for (text,) in ledger.conn.execute("select body_json from opportunities union all "
                                       "select intent_json from risk_events union all "
                                       "select reason from risk_events"):
        assert "abcdefgh123456" not in text and secret not in text and "z" * 24 not in text
    stored = ledger.query("select body_json from opportunities")[0]["body_json"]
    assert json.loads(stored)["legs"][0]["note"].startswith("venue said: {")  # still JSON


def test_clean_json_is_stored_byte_for_byte(ledger: Ledger) -> None:
    body = '{"b": 1, "a": "x"}'  # not key-sorted, spaced: a replay's bytes stay its own
    with ledger.transaction():
        ledger.insert_opportunity("opp-1", "scan", 1, "k", Decimal(1), True, body)
    assert ledger.query("select body_json from opportunities")[0]["body_json"] == body


_KILLED_BEFORE_COMMIT = """
import os, signal, sys
from decimal import Decimal
from pathlib import Path
from argus_core.ledger import Ledger
from argus_core.models import Order, OrderType, Side, TimeInForce
ledger = Ledger.in_dir(Path(sys.argv[1]))
def order(n):
    return Order(f"run-{n}", "v", "i", Side.BUY, Decimal("1.5"), Decimal("0.25"),
                 OrderType.LIMIT, TimeInForce.GTC, "s", n)
with ledger.transaction():
    ledger.insert_order(order(1), "run")
    ledger.save_checkpoint("runner", 1, 1, {"n": 1})
ledger.begin()
ledger.insert_order(order(2), "run")
ledger.save_checkpoint("runner", 2, 2, {"n": 2})
if sys.argv[2] == "flushed":
    ledger.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("point", ["written", "flushed"])
def test_sigkill_between_a_write_and_its_commit(tmp_path: Path, point: str) -> None:
    child = subprocess.run([sys.executable, "-c", _KILLED_BEFORE_COMMIT, str(tmp_path), point],
                           env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
                           check=False, timeout=120)
    assert child.returncode == -signal.SIGKILL
    with Ledger.in_dir(tmp_path) as ledger:
        assert ledger.applied == []
        assert [r["client_order_id"] for r in ledger.query("select * from orders")] == ["run-1"]
        assert ledger.load_checkpoint("runner") == (1, 1, {"n": 1})
        assert ledger.order_row("run-1")["limit_price"] == "0.25"  # type: ignore[index]


def test_a_checkpoint_holding_nan_round_trips(ledger: Ledger) -> None:
    """A warming indicator's state holds NaN: kept, never a run stopped at a checkpoint."""
    with ledger.transaction():
        ledger.save_checkpoint("runner", 1, 2, {"s": {"ema": float("nan"), "hi": float("inf")}})
    loaded = ledger.load_checkpoint("runner")
    assert loaded is not None
    state = loaded[2]["s"]
    assert state["ema"] != state["ema"] and state["hi"] == float("inf")
