"""Redemption of resolved positions, wired into the run: on chain in live mode, simulated in
paper and replay, every step a row of the plugin's ``pm_redemptions`` ledger table.

Where a redemption comes from
    The venue's ``stream()`` reports a resolution as ``Settlement`` events; the core books
    each as a *settlement fill* that closes the position at 1 / 0 (0.5 for a 50-50), so the
    account's cash already holds the payout.  The plugin's ``on_fill`` hook hands every
    settlement fill of a Polymarket position (a SELL: a long position closing) to
    :class:`Redemptions`, which the venue owns.

Paper and replay
    No chain: a ``queued`` and a ``simulated`` row per settlement fill, ``payout`` =
    quantity x settlement price, which is exactly the cash the settlement fill booked.  Live
    books the same settlement fill, so paper and live show the same cash; the ``mined`` row
    adds what the chain paid.

Live: one worker thread
    Each settlement fill is written ``queued`` (on the loop's thread, through the core's
    ledger) and handed to a worker thread that, ``redeem_delay_s`` later (so every token of
    one resolution goes into one transaction), redeems the condition:

    1. earlier transactions of this redemption (the hashes its rows name) are looked up
       first: a receipt ends it (``mined`` / ``failed``), one still in the node's pool is
       waited for; a redemption already mined is never sent again;
    2. the chain must know the resolution (CTF ``payoutDenominator`` > 0; ``waiting`` until
       then, ``failed`` after ``redeem_resolve_timeout_s``);
    3. the position tokens still held (CTF ``balanceOf``) bound what is redeemed: none left
       (redeemed by an earlier process, by hand) is ``skipped``, no transaction;
    4. the transaction (CTF ``redeemPositions(collateral, 0, condition, [1, 2])`` or the
       NegRiskAdapter's ``redeemPositions(condition, [yes, no])``) is built, gas-estimated (a
       revert is ``failed`` with its reason), signed locally and recorded ``signed`` with its
       hash and nonce *before* it is broadcast, then ``sent``, then its receipt awaited:
       ``mined`` with the block, gas and the ``PayoutRedemption`` payout, or ``failed``;
    5. a refused send is a ``retry`` row with the node's reason: *nonce too low* re-reads the
       nonce (after step 1 again: the nonce may be our own mined redemption), *replacement
       underpriced* / fee / gas errors bump the fees by ``redeem_fee_bump`` (capped at
       ``redeem_max_fee_gwei``) and the gas limit, a transaction with no receipt after
       ``redeem_receipt_timeout_s`` is replaced with the same nonce and higher fees, an RPC
       error while reading the chain is a ``retry`` and another go ``redeem_poll_s`` later;
       at most ``redeem_max_attempts`` signed transactions (and as many errors), then
       ``failed``.

Threads and the ledger
    The core's ledger connection belongs to the loop's thread, and the loop holds its write
    transaction while it works an event.  The worker therefore never touches it: it opens
    its *own* apsw connection to the same WAL file (busy timeout, ``synchronous=full``) and
    commits each row on its own, so a ``signed`` row is durable before its broadcast whatever
    the loop is doing (handing rows to the loop would make that durability wait for the
    loop's next commit).  The loop writes only the ``queued`` rows, from ``on_fill``.

Restarts
    ``start()`` re-reads ``pm_redemptions`` and the run's settlement fills: every condition
    without a ``mined`` / ``skipped`` row after its last ``queued`` one is redeemed again
    from step 1 (so a ``failed`` one is tried again at the next start, e.g. after the
    adapter was approved), and a settlement fill booked before a crash but never queued is
    queued now.

Limits: positions must sit in the signer's own address (``signature_type`` 0); proxy and
Safe wallets redeem through their wallet, which this worker does not drive (``failed`` with
that reason).  The CTF redeems the address's whole balance of the condition; the adapter
exactly ``[yes, no]`` = the settled quantities, bounded by the balances.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import apsw
import attrs
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import TransactionNotFound

from argus_core import Fill, Instrument, Ledger, Liquidity, Migrations, Side, VenueError
from argus_venue_polymarket import constants as C
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.settlement import (
    SettlementClient,
    TransactionReverted,
    is_revert,
    revert_reason,
    to_base_units,
)

log = logging.getLogger(__name__)

TABLE = "pm_redemptions"
QUEUED, WAITING, SIGNED, SENT, RETRY = "queued", "waiting", "signed", "sent", "retry"
MINED, FAILED, SKIPPED, SIMULATED = "mined", "failed", "skipped", "simulated"
#: Steps after which a condition's redemption is over for good (``failed`` is retried at
#: the next start).
DONE_STEPS = (MINED, SKIPPED, SIMULATED)
_UNIT = Decimal(10) ** C.TOKEN_DECIMALS
_GWEI = 10 ** 9


def register(migrations: Migrations) -> None:
    """The plugin's migration set (``polymarket``): the ``pm_redemptions`` table."""
    pm = migrations.set("polymarket")

    @pm
    def m001_redemptions(conn: apsw.Connection) -> None:
        # One row per step, append only: the table is the redemption's history.
        conn.execute(
            f"create table {TABLE} ("
            " seq integer primary key autoincrement,"
            " ts_ns integer not null,"
            " condition_id text not null,"
            # queued waiting signed sent retry mined failed skipped simulated
            " step text not null,"
            " contract text not null,"  # ctf | neg_risk_adapter
            " fill_id text,"  # queued / simulated: the settlement fill
            " attempt integer not null default 0,"  # signed transactions so far
            " tokens_json text not null default '{}',"  # queued: claims; signed: base units
            " expected_payout text,"  # settled quantity x price (pUSD)
            " payout text,"  # mined: what PayoutRedemption paid; simulated: the fill's cash
            " tx_hash text, nonce integer, max_fee_per_gas text,"
            " max_priority_fee_per_gas text, gas integer, block_number integer,"
            " detail text not null default '')")
        conn.execute(f"create index {TABLE}_condition on {TABLE} (condition_id, seq)")


@attrs.frozen
class Claim:
    """Shares of one token that a settlement fill closed, and the price it settled at."""

    token_id: str
    is_yes: bool
    quantity: Decimal
    price: Decimal

    def as_json(self) -> dict[str, Any]:
        """The claim as stored in a ``queued`` row."""
        return {"is_yes": self.is_yes, "quantity": str(self.quantity), "price": str(self.price)}


@attrs.define
class Job:
    """One condition to redeem: the claims of this run's settled tokens."""

    condition_id: str
    neg_risk: bool
    claims: dict[str, Claim] = attrs.Factory(dict)
    due_at: float = 0.0  # monotonic
    queued_at: float = attrs.Factory(time.monotonic)
    waiting_recorded: bool = False
    errors: int = 0  # unexpected failures (RPC down...) so far

    @property
    def contract(self) -> str:
        """Which contract redeems it."""
        return "neg_risk_adapter" if self.neg_risk else "ctf"

    @property
    def expected_payout(self) -> Decimal:
        """Settled quantity x settlement price: the cash the settlement fills booked."""
        return sum((c.quantity * c.price for c in self.claims.values()), Decimal(0))

    def add(self, claim: Claim) -> None:
        """Add a claim (the same token twice adds up)."""
        old = self.claims.get(claim.token_id)
        if old is not None:
            claim = attrs.evolve(claim, quantity=old.quantity + claim.quantity)
        self.claims[claim.token_id] = claim


def claim_of(fill: Fill, instrument: Instrument | None) -> tuple[str, bool, Claim] | None:
    """(condition id, negRisk?, claim) of a settlement fill that closed a long Polymarket
    position; None for anything else (other fills, short positions)."""
    if fill.liquidity is not Liquidity.SETTLEMENT or fill.side is not Side.SELL:
        return None
    if not fill.instrument_id.startswith(f"{C.VENUE}:") or instrument is None:
        return None
    condition = str(instrument.meta.get("condition_id") or "")
    if not condition:
        return None
    token = fill.instrument_id.split(":", 1)[1]
    return condition, bool(instrument.meta.get("neg_risk")), Claim(
        token, bool(instrument.meta.get("is_yes")), fill.quantity, fill.price)


def row(condition_id: str, step: str, contract: str, *, ts_ns: int | None = None,
        **values: Any) -> dict[str, Any]:
    """A ``pm_redemptions`` row (the columns not given take their defaults).  Rows written
    from a fill carry the fill's time, so a replay writes the same rows byte for byte;
    the worker's carry the wall clock."""
    out: dict[str, Any] = {"ts_ns": time.time_ns() if ts_ns is None else ts_ns,
                           "condition_id": condition_id, "step": step, "contract": contract}
    for key, value in values.items():
        if value is None:
            continue
        out[key] = json.dumps(value, sort_keys=True) if key == "tokens_json" else (
            str(value) if isinstance(value, Decimal) else value)
    return out


def classify_send_error(message: str) -> str:
    """What a node's refusal of ``eth_sendRawTransaction`` means for a retry: ``nonce``,
    ``underpriced`` (a replacement needs higher fees), ``gas`` (fee below the base fee, gas
    limit too low), ``known`` (the node has this very transaction), ``funds`` or ``other``.
    Messages are geth's / bor's (``core/txpool/errors.go``, ``core/error.go``)."""
    m = message.lower()
    if "already known" in m or "known transaction" in m:
        return "known"
    if "nonce too low" in m or "invalid nonce" in m or "nonce has already been used" in m:
        return "nonce"
    if "replacement transaction underpriced" in m or "replacement fee too low" in m:
        return "underpriced"
    if "insufficient funds" in m:
        return "funds"
    if any(s in m for s in ("underpriced", "fee too low", "less than block base fee",
                            "intrinsic gas too low", "out of gas", "gas limit",
                            "fee cap", "tip too low")):
        return "gas"
    return "other"


def _units(quantity: Decimal) -> int:
    """Shares -> base units, rounding down (a fractional unit cannot be redeemed)."""
    return int((quantity * _UNIT).to_integral_value(rounding="ROUND_DOWN"))


class _Stopped(Exception):
    """The worker was asked to stop while waiting."""


class Redemptions:
    """The venue's redemptions of one run: simulated rows in paper / replay, the worker
    thread in live mode (see the module docstring)."""

    def __init__(self, settings: PolymarketSettings, mode: str, ledger: Ledger,
                 instrument_of: Callable[[str], Instrument | None],
                 client_factory: Callable[[], SettlementClient]) -> None:
        self.settings = settings
        self.mode = mode
        self.ledger = ledger  # the core's: loop thread only
        self.ledger_path = Path(ledger.path)
        self.instrument_of = instrument_of
        self.client_factory = client_factory
        self.live = mode == "live"
        self._cond = threading.Condition()
        self._jobs: dict[str, Job] = {}
        self._busy: str | None = None
        self._closing = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Worker failures that ended it (logged and recorded; tests read it).
        self.errors: list[str] = []

    # -- the loop's side ---------------------------------------------------------------

    def start(self) -> None:
        """Live: recover unfinished redemptions of this run and start the worker."""
        if not self.live:
            return
        for job in self._recover():
            self._enqueue(job, delay=False)
        self._thread = threading.Thread(target=self._run, name="pm-redemptions", daemon=True)
        self._thread.start()

    def on_fill(self, fill: Fill) -> None:
        """A committed fill (loop thread): settlement fills of long positions are redeemed
        (live) or recorded as simulated redemptions (paper, replay)."""
        instrument = self.instrument_of(fill.instrument_id)
        if fill.liquidity is Liquidity.SETTLEMENT and fill.side is Side.SELL and \
                fill.instrument_id.startswith(f"{C.VENUE}:") and instrument is None:
            cond = "unknown"
            self.ledger.insert(TABLE, row(cond, FAILED, "ctf", ts_ns=fill.ts_ns,
                                          fill_id=fill.fill_id, detail=(
                f"settlement fill {fill.fill_id}: instrument {fill.instrument_id} is not known "
                f"to the venue, so its condition cannot be redeemed automatically")))
            return
        got = claim_of(fill, instrument)
        if got is None:
            return
        condition, neg_risk, claim = got
        job = Job(condition, neg_risk, {claim.token_id: claim})
        self.ledger.insert(TABLE, row(
            condition, QUEUED, job.contract, ts_ns=fill.ts_ns, fill_id=fill.fill_id,
            tokens_json={claim.token_id: claim.as_json()}, expected_payout=job.expected_payout,
            detail=f"settlement fill {fill.fill_id}: {claim.quantity} shares of token "
                   f"{claim.token_id} settled at {claim.price}"))
        if not self.live:
            payout = claim.quantity * claim.price
            self.ledger.insert(TABLE, row(
                condition, SIMULATED, job.contract, ts_ns=fill.ts_ns, fill_id=fill.fill_id,
                tokens_json={claim.token_id: _units(claim.quantity)},
                expected_payout=payout, payout=payout,
                detail=f"{self.mode}: no chain; the settlement fill paid {payout} pUSD, what "
                       f"{job.contract} redeemPositions would pay"))
            return
        self._enqueue(job, delay=True)

    def close(self, wait_s: float | None = None) -> None:
        """Stop the worker after waiting up to ``wait_s`` (default ``redeem_shutdown_wait_s``)
        for redemptions under way; what is left resumes at the next start."""
        thread = self._thread
        if thread is None:
            return
        wait_s = self.settings.redeem_shutdown_wait_s if wait_s is None else wait_s
        deadline = time.monotonic() + wait_s
        with self._cond:
            self._closing = True
            for job in self._jobs.values():
                job.due_at = 0.0  # no more grouping delay: redeem now
            self._cond.notify_all()
            while (self._jobs or self._busy) and thread.is_alive():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.1))
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        thread.join(timeout=max(5.0, self.settings.request_timeout_s * 2))
        self._thread = None

    def idle(self) -> bool:
        """Nothing queued and nothing in progress."""
        with self._cond:
            return not self._jobs and self._busy is None

    def _enqueue(self, job: Job, *, delay: bool) -> None:
        with self._cond:
            job.due_at = time.monotonic() + (self.settings.redeem_delay_s
                                             if delay and not self._closing else 0.0)
            pending = self._jobs.get(job.condition_id)
            if pending is None:
                self._jobs[job.condition_id] = job
            else:
                for claim in job.claims.values():
                    pending.add(claim)
            self._cond.notify_all()

    def _recover(self) -> list[Job]:
        """Unfinished redemptions of this run (loop thread, at start)."""
        rows = self.ledger.query(f"select * from {TABLE} order by seq")
        jobs: dict[str, Job] = {}
        queued_fills: set[str] = set()
        for r in rows:
            cond = r["condition_id"]
            if r["fill_id"]:
                queued_fills.add(r["fill_id"])
            if r["step"] == QUEUED:
                job = jobs.setdefault(cond, Job(cond, r["contract"] == "neg_risk_adapter"))
                for token, c in json.loads(r["tokens_json"]).items():
                    job.add(Claim(token, bool(c["is_yes"]), Decimal(c["quantity"]),
                                  Decimal(c["price"])))
            elif r["step"] in DONE_STEPS:
                jobs.pop(cond, None)
        for f in self.ledger.fills():
            if f["liquidity"] != Liquidity.SETTLEMENT.value or f["fill_id"] in queued_fills:
                continue
            fill = Fill(f["fill_id"], f["client_order_id"], f["venue"], f["instrument_id"],
                        Side(f["side"]), Decimal(f["price"]), Decimal(f["quantity"]),
                        Decimal(f["fee"]), Liquidity.SETTLEMENT, int(f["ts_ns"]))
            got = claim_of(fill, self.instrument_of(fill.instrument_id))
            if got is None:
                continue
            cond, neg_risk, claim = got
            log.warning("polymarket: settlement fill %s was booked but never queued for "
                        "redemption (a stop in between); queueing it now", fill.fill_id)
            self.ledger.insert(TABLE, row(
                cond, QUEUED, "neg_risk_adapter" if neg_risk else "ctf", fill_id=fill.fill_id,
                tokens_json={claim.token_id: claim.as_json()},
                expected_payout=claim.quantity * claim.price,
                detail=f"settlement fill {fill.fill_id} queued at restart"))
            jobs.setdefault(cond, Job(cond, neg_risk)).add(claim)
        if jobs:
            log.info("polymarket: resuming %d unfinished redemption(s)", len(jobs))
        return list(jobs.values())

    # -- the worker thread ---------------------------------------------------------------

    def _run(self) -> None:
        conn: apsw.Connection | None = None
        try:
            conn = apsw.Connection(str(self.ledger_path))
            conn.setbusytimeout(30_000)  # the loop holds the write lock while it works an event
            conn.execute("pragma synchronous=full")
            worker = _Worker(self, conn)
            while True:
                job = self._next_job()
                if job is None:
                    return
                try:
                    again = worker.redeem(job)
                except _Stopped:
                    return
                except Exception as exc:  # an RPC that is down, a bug: retried, then failed
                    job.errors += 1
                    most = self.settings.redeem_max_attempts
                    if job.errors >= most:
                        log.exception("polymarket: redemption of %s failed", job.condition_id)
                        self.errors.append(f"{job.condition_id}: {exc}")
                        worker.record(job, FAILED, detail=f"gave up after {job.errors} "
                                      f"errors; last: {type(exc).__name__}: {exc}")
                        again = False
                    else:
                        worker.record(job, RETRY, detail=f"{type(exc).__name__}: {exc} "
                                      f"(error {job.errors} of {most})")
                        again = True
                with self._cond:
                    self._busy = None
                    if again and not self._stop.is_set():
                        self._requeue(job)
                    self._cond.notify_all()
        except Exception as exc:
            log.exception("polymarket: the redemption worker stopped")
            self.errors.append(str(exc))
        finally:
            with self._cond:
                self._busy = None
                self._cond.notify_all()
            if conn is not None:
                conn.close()

    def _requeue(self, job: Job) -> None:
        job.due_at = time.monotonic() + self.settings.redeem_poll_s
        pending = self._jobs.get(job.condition_id)
        if pending is not None:
            for claim in pending.claims.values():
                job.add(claim)
        self._jobs[job.condition_id] = job

    def _next_job(self) -> Job | None:
        with self._cond:
            while not self._stop.is_set():
                now = time.monotonic()
                due = [j for j in self._jobs.values() if j.due_at <= now]
                if due:
                    job = min(due, key=lambda j: j.due_at)
                    del self._jobs[job.condition_id]
                    self._busy = job.condition_id
                    return job
                nxt = min((j.due_at for j in self._jobs.values()), default=now + 1.0)
                self._cond.wait(max(0.01, min(nxt - now, 1.0)))
            return None


class _Worker:
    """The chain side of one redemption at a time (worker thread only)."""

    def __init__(self, owner: Redemptions, conn: apsw.Connection) -> None:
        self.r = owner
        self.s = owner.settings
        self.conn = conn
        self.client = owner.client_factory()
        self.w3 = self.client.w3
        self.account = Web3.to_checksum_address(self.client.signer_address())

    # -- rows --------------------------------------------------------------------------

    def record(self, job: Job, step: str, **values: Any) -> None:
        """Append (and commit) one row."""
        r = row(job.condition_id, step, job.contract, **values)
        cols = ", ".join(r)
        marks = ", ".join("?" for _ in r)
        with self.conn:  # its own transaction, committed now
            self.conn.execute(f"insert into {TABLE} ({cols}) values ({marks})",
                              list(r.values()))
        if step in (FAILED, RETRY):
            log.warning("polymarket: redemption of %s: %s %s", job.condition_id, step,
                        values.get("detail", ""))
        else:
            log.info("polymarket: redemption of %s: %s %s", job.condition_id, step,
                     values.get("tx_hash", ""))

    def open_txs(self, condition_id: str) -> list[tuple[str, int]]:
        """(hash, nonce) of the transactions signed since the condition's last final row."""
        rows = list(self.conn.execute(
            f"select step, tx_hash, nonce from {TABLE} where condition_id = ? order by seq",
            (condition_id,)))
        out: list[tuple[str, int]] = []
        for step, tx_hash, nonce in rows:
            if step in (MINED, FAILED, SKIPPED, SIMULATED):
                out = []
            elif step == SIGNED and tx_hash:
                out.append((str(tx_hash), int(nonce)))
        return out

    # -- the redemption ----------------------------------------------------------------

    def redeem(self, job: Job) -> bool:
        """Take ``job`` as far as it goes; True when it must come back later (the chain
        does not know the resolution yet)."""
        s, client = self.s, self.client
        if s.signature_type != 0 or (s.funder and s.funder.lower() != self.account.lower()):
            self.record(job, FAILED, detail=(
                f"positions are held by funder {s.funder} (signature_type {s.signature_type}, "
                f"a proxy or Safe wallet): redeem them through that wallet; this worker "
                f"redeems from the signer's own address only"))
            return False
        open_txs = self.open_txs(job.condition_id)
        fee_mult, gas_mult = Decimal(1), Decimal(1)
        nonce: int | None = None
        if open_txs:  # from before a restart, or an earlier pass
            confirmed = self.w3.eth.get_transaction_count(self.account, "latest")
            if confirmed <= open_txs[-1][1]:
                nonce = open_txs[-1][1]  # a re-send replaces, never doubles, the old one
                fee_mult = s.redeem_fee_bump
        last_error = ""
        errors = 0
        while True:
            self._check_stop()
            receipt, pending = self._known_outcome(open_txs)
            if receipt is None and pending:
                receipt = self._wait_receipt(open_txs)
                if receipt is None:
                    nonce = open_txs[-1][1]
                    fee_mult *= s.redeem_fee_bump
                    self.record(job, RETRY, attempt=len(open_txs), tx_hash=open_txs[-1][0],
                                nonce=nonce, detail=(
                                    f"no receipt after {s.redeem_receipt_timeout_s:g}s: "
                                    f"replacing it (same nonce, fees x{s.redeem_fee_bump})"))
            if receipt is not None:
                self._finish(job, receipt)
                return False
            # -- the chain: resolved?  still held?
            if int(client.ctf.functions.payoutDenominator(
                    self._bytes32(job.condition_id)).call()) == 0:
                if time.monotonic() - job.queued_at > s.redeem_resolve_timeout_s:
                    self.record(job, FAILED, detail=(
                        f"the condition's payouts are still not on chain "
                        f"{s.redeem_resolve_timeout_s:g}s after the resolution was reported"))
                    return False
                if not job.waiting_recorded:
                    job.waiting_recorded = True
                    self.record(job, WAITING, detail="the venue reported the resolution; the "
                                "CTF has no payouts for the condition yet (payoutDenominator 0)")
                return True
            amounts = self._amounts(job)
            if not any(amounts.values()):
                self.record(job, SKIPPED, expected_payout=job.expected_payout, detail=(
                    "no position tokens of the condition left at "
                    f"{self.account}: already redeemed (no transaction)"))
                return False
            if job.expected_payout == 0:
                self.record(job, SKIPPED, tokens_json=amounts, expected_payout=Decimal(0),
                            detail="every token held resolved worthless: nothing to redeem, "
                                   "no transaction (the tokens stay, worth 0)")
                return False
            if len(open_txs) >= s.redeem_max_attempts or errors >= s.redeem_max_attempts:
                self.record(job, FAILED, attempt=len(open_txs), detail=(
                    f"gave up after {len(open_txs)} transaction(s) and {errors} error(s); "
                    f"last: {last_error}"))
                return False
            # -- build, sign, record, send
            to, data = self._calldata(job, amounts)
            try:
                tx = client.build_transaction(to, data, sender=self.account, nonce=nonce,
                                              gas_margin=float(s.redeem_gas_margin * gas_mult))
            except TransactionReverted as exc:
                self.record(job, FAILED, tokens_json=amounts, detail=(
                    f"{job.contract} redeemPositions reverts: {exc}"))
                return False
            except VenueError as exc:  # the RPC, not the contract: try again shortly
                errors += 1
                last_error = str(exc)
                self.record(job, RETRY, attempt=len(open_txs), detail=str(exc))
                self._sleep(s.redeem_poll_s)
                continue
            if not self._apply_fees(tx, fee_mult, open_txs):
                self.record(job, FAILED, attempt=len(open_txs), detail=(
                    f"fees would exceed redeem_max_fee_gwei ({s.redeem_max_fee_gwei}); "
                    f"last: {last_error or 'no receipt'}"))
                return False
            raw = client.sign(tx)
            tx_hash = client.tx_hash(raw)
            open_txs.append((tx_hash, int(tx["nonce"])))
            fees = {"max_fee_per_gas": str(tx["maxFeePerGas"]),
                    "max_priority_fee_per_gas": str(tx["maxPriorityFeePerGas"])}
            self.record(job, SIGNED, attempt=len(open_txs), tokens_json=amounts,
                        expected_payout=job.expected_payout, tx_hash=tx_hash,
                        nonce=tx["nonce"], gas=tx["gas"], **fees,
                        detail=f"{job.contract} redeemPositions to {to}")
            try:
                client.send(raw)
            except Exception as exc:  # web3: Web3RPCError / ValueError / connection errors
                kind = classify_send_error(str(exc))
                last_error = f"{kind}: {exc}"
                if kind != "known":
                    errors += 1
                    self.record(job, RETRY, attempt=len(open_txs), tx_hash=tx_hash,
                                nonce=tx["nonce"], detail=f"send refused ({kind}): {exc}")
                    if kind == "funds":
                        self.record(job, FAILED, attempt=len(open_txs), detail=(
                            f"the signer {self.account} cannot pay the gas: {exc}"))
                        return False
                    if kind == "nonce":
                        open_txs.pop()  # never accepted: nothing to look up
                        nonce = None  # re-read (step 1 first: it may be ours, mined)
                    elif kind in ("underpriced", "gas"):
                        open_txs.pop()
                        nonce = int(tx["nonce"])
                        fee_mult *= s.redeem_fee_bump
                        if kind == "gas":
                            gas_mult *= Decimal("1.25")
                    else:  # maybe sent: the same hash is looked up, then re-sent as is
                        nonce = int(tx["nonce"])
                        self._sleep(s.redeem_poll_s)
                    continue
            self.record(job, SENT, attempt=len(open_txs), tx_hash=tx_hash, nonce=tx["nonce"],
                        detail="accepted by the node")
            nonce = int(tx["nonce"])

    # -- helpers -----------------------------------------------------------------------

    def _check_stop(self) -> None:
        if self.r._stop.is_set():
            raise _Stopped

    def _sleep(self, seconds: float) -> None:
        if self.r._stop.wait(seconds):
            raise _Stopped

    @staticmethod
    def _bytes32(value: str) -> bytes:
        return bytes.fromhex(value.removeprefix("0x"))

    def _amounts(self, job: Job) -> dict[str, int]:
        """Base units to redeem per token: the settled quantity, bounded by the balance."""
        out: dict[str, int] = {}
        for token, claim in sorted(job.claims.items()):
            held = int(self.client.ctf.functions.balanceOf(self.account, int(token)).call())
            out[token] = min(to_base_units(claim.quantity), held)
        return out

    def _calldata(self, job: Job, amounts: dict[str, int]) -> tuple[str, str]:
        if not job.neg_risk:
            return self.client.ctf_address, self.client.redeem_ctf_calldata(job.condition_id)
        yes = sum(n for t, n in amounts.items() if job.claims[t].is_yes)
        no = sum(n for t, n in amounts.items() if not job.claims[t].is_yes)
        return self.client.adapter_address, self.client.redeem_neg_risk_calldata(
            job.condition_id, yes, no)

    def _apply_fees(self, tx: dict[str, Any], mult: Decimal, open_txs: list[tuple[str, int]]
                    ) -> bool:
        """Scale the fees by ``mult`` under the cap; False when a bump cannot fit under it."""
        cap = int(self.s.redeem_max_fee_gwei * _GWEI)
        tip = int(Decimal(tx["maxPriorityFeePerGas"]) * mult)
        fee = int(Decimal(tx["maxFeePerGas"]) * mult)
        if fee > cap:
            if mult > 1:  # a bump that does not fit is no bump: the node would refuse it
                return False
            fee = cap
        tx["maxFeePerGas"] = fee
        tx["maxPriorityFeePerGas"] = min(tip, fee)
        return True

    def _known_outcome(self, open_txs: list[tuple[str, int]]) -> tuple[Any, bool]:
        """(a receipt of one of ``open_txs`` or None, whether one is in the node's pool)."""
        pending = False
        for tx_hash, _nonce in reversed(open_txs):
            try:
                return self.w3.eth.get_transaction_receipt(_hash(tx_hash)), False
            except TransactionNotFound:
                pass
            try:
                self.w3.eth.get_transaction(_hash(tx_hash))
                pending = True
            except TransactionNotFound:
                pass
        return None, pending

    def _wait_receipt(self, open_txs: list[tuple[str, int]]) -> Any:
        """A receipt of any of ``open_txs`` within ``redeem_receipt_timeout_s``, or None."""
        deadline = time.monotonic() + self.s.redeem_receipt_timeout_s
        while True:
            receipt, _pending = self._known_outcome(open_txs)
            if receipt is not None:
                return receipt
            if time.monotonic() >= deadline:
                return None
            self._sleep(self.s.redeem_poll_s)

    def _finish(self, job: Job, receipt: Any) -> None:
        tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
        block = int(receipt["blockNumber"])
        if int(receipt["status"]) != 1:
            self.record(job, FAILED, tx_hash=tx_hash, block_number=block,
                        gas=int(receipt["gasUsed"]),
                        detail=f"reverted on chain: {self._revert_reason(tx_hash, block)}")
            return
        units = self._payout_units(job, receipt)
        payout = Decimal(units) / _UNIT
        expected = job.expected_payout
        note = "" if payout == expected else (
            f" (the settlement fills booked {expected}; the CTF pays the address's whole "
            f"balance)" if payout > expected else f" (the settlement fills booked {expected})")
        self.record(job, MINED, tx_hash=tx_hash, block_number=block, gas=int(receipt["gasUsed"]),
                    payout=payout, expected_payout=expected,
                    detail=f"redeemed: {payout} pUSD paid{note}")

    def _payout_units(self, job: Job, receipt: Any) -> int:
        """``payout`` of the redeeming contract's ``PayoutRedemption`` for our address."""
        contract = self.client.adapter if job.neg_risk else self.client.ctf
        event = contract.events.PayoutRedemption()
        total = 0
        for entry in receipt["logs"]:
            if str(entry["address"]).lower() != str(contract.address).lower():
                continue
            try:
                decoded = event.process_log(entry)
            except Exception:  # another event of the same contract
                continue
            if str(decoded["args"]["redeemer"]).lower() == self.account.lower():
                total += int(decoded["args"]["payout"])
        return total

    def _revert_reason(self, tx_hash: str, block: int) -> str:
        """Why a mined transaction reverted: replayed as a call on the block before."""
        try:
            tx = self.w3.eth.get_transaction(_hash(tx_hash))
            self.w3.eth.call({"from": tx["from"], "to": tx["to"], "data": tx["input"]},
                             block_identifier=max(0, block - 1))
        except Exception as exc:  # the revert, or the replay itself failed
            return revert_reason(exc) if is_revert(exc) else f"status 0 (replay failed: {exc})"
        return "status 0 (the replay succeeds: ran out of gas or state changed)"


def _hash(tx_hash: str) -> HexBytes:
    """A 0x hex transaction hash as the bytes web3's typed API takes."""
    return HexBytes(tx_hash)

