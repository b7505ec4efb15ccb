"""Order tracking: what this account's orders are and what the core has been told.

:class:`OrderTracker` holds the CLOB client and the per-order state every other part
shares (venue order ids, orders watched until they end, orders whose post stayed
ambiguous, quantities reported), the queue of fills and ``OrderUpdate``s that
``executions()`` yields, the mapping of CLOB trades to our fills, and the adoption of an
order found at the venue whose answer we never had.  Sending (:mod:`.sending`), the
executions feed (:mod:`.feed`) and restart reconciliation (:mod:`.reconcile`) build on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from decimal import Decimal

import attrs
from py_clob_client_v2.client import ClobClient
from py_clob_client_v2.clob_types import ApiCreds, OrderType

from argus_core import (
    ConfigError,
    Fill,
    FillCorrection,
    Instrument,
    Liquidity,
    Order,
    OrderStatus,
    OrderUpdate,
    Side,
)
from argus_venue_polymarket import constants as C
from argus_venue_polymarket.clob import ClobHttpClient
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.heartbeat import HeartbeatKeeper
from argus_venue_polymarket.instruments import fee_of
from argus_venue_polymarket.lookup import FoundOrder
from argus_venue_polymarket.schemas import TRADE_BOOKED_STATUSES, ClobTrade
from argus_venue_polymarket.signing import SentOrder

log = logging.getLogger(__name__)

#: How long an order given up as never placed is still looked for in the venue's open
#: orders (a post held on the way can be placed after the give-up; it is then cancelled).
LATE_PLACEMENT_WATCH_S = 3600.0
#: How far ahead of this machine's clock a trade's ``match_time`` may stamp its fills.  A
#: fill is never dropped (the core leaves out market events stamped over 5 minutes ahead,
#: never fills): one stamped later is booked at the clock plus this, said once.  Before,
#: it was booked at the venue's stamp (years ahead: damage, or milliseconds read as
#: seconds) and the trades poll's window, which follows the newest match, moved there:
#: every later fill went unread by the poll.
FILL_AHEAD_ALLOWANCE_S = 5


def match_stamp_s(trade: ClobTrade, now_s: float) -> int:
    """``trade``'s ``match_time`` (unix seconds; 0 when it had none), no later than
    ``now_s`` plus :data:`FILL_AHEAD_ALLOWANCE_S`."""
    return min(trade.match_time_s, int(now_s) + FILL_AHEAD_ALLOWANCE_S)


@attrs.frozen
class FeeCheck:
    """The fee check of one post answer's fill ``<venue order id>:0`` (see
    :meth:`OrderTracker._fee_checks_of`): the fee it was booked with, the trade ids the
    answer named (empty: not known, after a restart or an answer that named none) and the
    shares of the fill (None: not known)."""

    fee: Decimal
    trade_ids: tuple[str, ...]
    quantity: Decimal | None
    #: After a restart the ledger's filled quantity is net of the busts it booked: the
    #: trades read are complete when their sizes add up to it with or without the FAILED.
    net_of_busts: bool = False


@attrs.frozen
class UnknownOrder:
    """An order whose post stayed ambiguous: ``executions()`` keeps looking for it."""

    post: SentOrder
    since_s: int
    problem: str
    give_up_at_s: float


class OrderTracker:
    """The client and the order state of one account's live order entry (see the module
    docstring); :class:`argus_venue_polymarket.execution.PolymarketExecution` is built on it."""

    def __init__(self, settings: PolymarketSettings,
                 instruments: Callable[[str], Instrument | None], *,
                 client: ClobClient | None = None) -> None:
        self.settings = settings
        self._instrument = instruments
        self._client = client
        self.venue_ids: dict[str, str] = {}  # client order id -> venue order id
        self._orders: dict[str, Order] = {}
        self.heartbeat: HeartbeatKeeper | None = None
        #: Venue order ids whose taker matches the post response already reported as fills.
        self.taker_reported: set[str] = set()
        #: Core orders of this run known from the ledger (``resume``): how open orders and
        #: trades of a previous process map back to core client order ids.
        self.known_orders: dict[str, Order] = {}
        #: Order posts sent whose response has not been processed yet: a trade of an
        #: order id we do not know may be one of them, so it waits for the next poll.
        self.posts_in_flight = 0
        #: Venue order ids (hashes) whose post or look-up is under way: their trades wait,
        #: so a match is booked under one fill id only (the answer's or the trade's).
        self._in_flight: set[str] = set()
        #: Orders whose post stayed ambiguous (``OrderUnknown``), or that were pending when
        #: the previous process stopped: looked for by hash until found or given up.
        self.unknown: dict[str, UnknownOrder] = {}
        #: Orders reported never placed (or ended) whose post might still be placed late
        #: (held on the way past ``order_give_up_s``): hash -> (client id, watched until,
        #: Unix seconds).  Found open at the venue -> cancelled there (see ``feed``).
        #: Keyed by hash: a listing is checked against it in O(listed), not O(watched).
        self.ghosts: dict[str, tuple[str, float]] = {}
        self._ghosts_pruned_at = 0.0  # when expired watches were last dropped (Unix s)
        #: Orders pending at a restart with no venue order id recorded: when to give up.
        self.unidentified: dict[str, float] = {}
        #: Announced order hashes (PENDING updates) -> True once ``executions()``'s consumer
        #: has taken the update (the core has recorded the hash), False if it stopped
        #: first: the post goes out only on True.
        self._durable: dict[int, asyncio.Future[bool]] = {}
        #: The executions consumer: "none" (the venue is used bare: nothing records hashes),
        #: "expected" (``resume`` ran: the core's consumer is about to start), "running",
        #: "ended" (nothing will record a hash again: no order may be sent).
        self._consumer = "none"
        self._looked_up: set[str] = set()  # venue order ids already asked about (GET order)
        self._seen_trades: dict[str, int] = {}  # fill id -> match time (s), for de-duplication
        self._fill_ahead_said = False  # a trade stamped ahead was said (see match_s)
        #: Where the first trades poll starts after a restart (newest booked fill, seconds).
        self.resume_after_s: int | None = None
        #: What ``executions()`` reports next (fills and ``OrderUpdate``s, in venue order).
        self._reports: deque[Fill | OrderUpdate | FillCorrection] = deque()
        self._wake = asyncio.Event()
        #: Orders that may still trade (resting, or answered "delayed"): client order id ->
        #: venue order id, watched until they leave the venue's open orders.
        self.watched: dict[str, str] = {}
        #: Watched orders we know have ended (our cancel, confirmed) -> why.
        self._ending: dict[str, str] = {}
        self._lookup_failures: dict[str, int] = {}  # venue order id -> failed GET order count
        self._lookup_after: dict[str, float] = {}  # venue order id -> next look-up (monotonic)
        #: Own-side quantity reported per client order id (responses, trades, the ledger).
        self.reported: dict[str, Decimal] = {}
        #: Venue order id -> the trade ids its post answer reported as one ``<id>:0`` fill
        #: (a FAILED trade busts that fill only when it is the answer's one trade).
        self.answer_trades: dict[str, tuple[str, ...]] = {}
        #: Post answers' fills ``<venue order id>:0`` whose fee is checked against the
        #: venue's per-trade fees once every trade of the answer is read (see
        #: :meth:`_fee_checks_of`): venue order id -> what the check needs.
        self.fee_checks: dict[str, FeeCheck] = {}
        #: Taker trades read of orders whose post is undecided or whose answer's fee is
        #: checked: venue order id -> trade id -> the trade (its latest copy).
        self.taker_trades: dict[str, dict[str, ClobTrade]] = {}
        #: Answers' fills booked before a restart whose fee cannot be checked (a resting
        #: order's: its answer's trade list and quantity are gone): venue order id -> the
        #: first price a taker trade of it was read at (None: none yet); a second price
        #: (a sweep) is logged once, and the entry dropped.
        self.unchecked_answers: dict[str, Decimal | None] = {}
        #: Fill ids whose trade FAILED and whose bust was reported (or said impossible).
        self.busted: set[str] = set()
        self._retrying: set[str] = set()  # trade ids said RETRYING (logged once each)
        #: Trade ids seen FAILED: never booked after that, whatever status a repeated or
        #: late frame, a deferred copy or a re-read page shows (FAILED is final on chain).
        self.failed_trades: set[str] = set()
        #: FAILED taker trades of orders whose post was unanswered when they came (trade
        #: id -> trade): the answer may book them (``<hash>:0``); busted as it does
        #: (:meth:`bust_failed_of`).  Before, they stood unless a later poll re-read them.
        self.failed_waiting: dict[str, ClobTrade] = {}
        #: User-channel trades with a fill left for later (see ``ExecutionsFeed._book_trades``):
        #: decided again at each turn of the poll task, without asking the venue.
        self.deferred: dict[str, ClobTrade] = {}
        #: Watched orders the user channel said were cancelled: ended (after their fills)
        #: without waiting for the open-orders check.
        self.said_ended: set[str] = set()
        #: Orders whose cancel of ours is under way (its answer gives the reason).
        self.cancelling: set[str] = set()
        self._reconcile_wanted = False  # the poll task runs the trades poll next turn
        self._nudge = asyncio.Event()  # wakes the poll task before its interval ends
        #: The task pushing fills as they happen (the user channel), while ``executions()``
        #: runs; ``close()`` ends it too (a consumer that died leaves the stream unclosed).
        self._channel_task: asyncio.Task[None] | None = None

    # --- client ---------------------------------------------------------------------------

    @property
    def client(self) -> ClobClient:
        """The py-clob-client-v2 client (built on first use; needs ``private_key``)."""
        if self._client is None:
            s = self.settings
            if s.private_key is None:
                raise ConfigError("[plugins.polymarket] private_key is not set: live orders need "
                                  "a signer key reference like '$env:POLY_PRIVATE_KEY'")
            creds = None
            if s.api_key and s.api_secret and s.api_passphrase:
                creds = ApiCreds(s.api_key.reveal(), s.api_secret.reveal(),
                                 s.api_passphrase.reveal())
            self._client = ClobHttpClient(s.clob_url.rstrip("/"), s.chain_id,
                                          timeout_s=s.request_timeout_s,
                                          key=s.private_key.reveal(), creds=creds,
                                          signature_type=s.signature_type, funder=s.funder)
        return self._client

    async def ensure_api_creds(self) -> None:
        """Derive (or create) L2 API credentials from the signer when none are configured."""
        client = self.client
        if client.creds is None:
            creds = await asyncio.to_thread(client.create_or_derive_api_key)
            client.set_api_creds(creds)

    def _heartbeat(self) -> HeartbeatKeeper:
        if self.heartbeat is None:
            self.heartbeat = HeartbeatKeeper(self.client.post_heartbeat,
                                             self.settings.heartbeat_interval_s)
        return self.heartbeat

    # --- reporting (what ``executions()`` yields) -------------------------------------------

    def _report(self, items: Sequence[Fill | OrderUpdate | FillCorrection], *,
                counted: bool = False) -> None:
        """Queue fills and order updates for ``executions()``, in this order (``counted``:
        the fills' quantities are in ``reported`` already)."""
        for item in items:
            if isinstance(item, Fill) and not counted:
                self._count(item)
            self._reports.append(item)
        if items:
            self._wake.set()

    def _count(self, fill: Fill) -> None:
        """Add ``fill`` to its order's reported quantity."""
        coid = fill.client_order_id
        order = self._orders.get(coid) or self.known_orders.get(coid)
        if order is not None and order.side is fill.side:
            self.reported[coid] = self.reported.get(coid, Decimal(0)) + fill.quantity

    def _forget(self, client_order_id: str) -> None:
        vid = self.watched.pop(client_order_id, None)
        if vid is not None:
            self._lookup_failures.pop(vid, None)
            self._lookup_after.pop(vid, None)
        self._ending.pop(client_order_id, None)
        self.said_ended.discard(client_order_id)
        if self.heartbeat is not None:
            self.heartbeat.resting.discard(client_order_id)

    def _delivered(self, item: Fill | OrderUpdate | FillCorrection) -> None:
        """``executions()``'s consumer is done with ``item`` (it asked for the next one)."""
        taken = self._durable.pop(id(item), None)
        if taken is not None and not taken.done():
            taken.set_result(True)

    # --- trades and orders found at the venue ----------------------------------------------

    def fills_of_trade(self, trade: ClobTrade) -> list[Fill]:
        """Core fills for one ``GET /data/trades`` item: ours as taker, or each of our
        resting orders it matched as maker.  Fill ids are ``<trade id>:<venue order id>``,
        stable across polls, so a trade seen twice is one fill."""
        by_vid = {v: c for c, v in self.venue_ids.items()}
        our_key = self.client.creds.api_key if self.client.creds is not None else ""
        ts = self.match_s(trade) * 1_000_000_000 or time.time_ns()
        out = []
        if trade.trader_side == "TAKER":
            vid = trade.taker_order_id
            coid = by_vid.get(vid, f"pm:{vid}")
            if vid not in self.taker_reported:
                out.append(self._trade_fill(f"{trade.trade_id}:{trade.taker_order_id}", coid,
                                            trade.asset_id, trade.side, trade.price,
                                            trade.size, Liquidity.TAKER, ts))
        for m in trade.maker_orders:
            if m.order_id not in by_vid and not (our_key and m.owner == our_key):
                continue  # another account's order on the other side of our trade
            coid = by_vid.get(m.order_id, f"pm:{m.order_id}")
            out.append(self._trade_fill(f"{trade.trade_id}:{m.order_id}", coid, m.asset_id,
                                        m.side, m.price, m.matched_amount, Liquidity.MAKER, ts))
        return out

    def match_s(self, trade: ClobTrade) -> int:
        """:func:`match_stamp_s` at this machine's clock, a stamp held back said once (per
        process: a venue whose clock runs ahead would say it for every trade)."""
        now_s = time.time()
        stamp = match_stamp_s(trade, now_s)
        if stamp != trade.match_time_s and not self._fill_ahead_said:
            self._fill_ahead_said = True
            log.error("polymarket: trade %s matched %.0f s ahead of this machine's clock: its "
                      "fills are booked at this clock (+%d s), and any later trade stamped "
                      "that far ahead too (damaged data, or this machine's clock is wrong)",
                      trade.trade_id, trade.match_time_s - now_s, FILL_AHEAD_ALLOWANCE_S)
        return stamp

    def bookable(self, trade: ClobTrade) -> bool:
        """Whether ``trade``'s fills may be booked: its status is one that stands
        (:data:`TRADE_BOOKED_STATUSES`) and it was never seen FAILED (a FAILED one is
        remembered: before, a MATCHED copy seen after it was booked)."""
        if trade.status == "FAILED":
            self.failed_trades.add(trade.trade_id)
        return trade.status in TRADE_BOOKED_STATUSES and trade.trade_id not in self.failed_trades

    def _busts(self, trade: ClobTrade) -> list[FillCorrection]:
        """``FillCorrection(bust=True)`` for each fill of ours reported from ``trade``,
        which ended FAILED on chain (the trade did not happen), once per fill in this
        process (the core applies a repeat as nothing).  A taker match the post answer
        reported (``<order hash>:0``) is busted whole when the answer named this trade
        alone; otherwise (one of several trades of the answer, or after a restart) that
        trade's part of the fill is (its size at its price, its fee refunded:
        ``<order hash>:0:bust:<trade id>``)."""
        why = f"polymarket trade {trade.trade_id} FAILED on chain"
        ours = [f.fill_id for f in self.fills_of_trade(trade)
                if f.fill_id in self._seen_trades and not f.client_order_id.startswith("pm:")]
        out = []
        vid = trade.taker_order_id
        if trade.trader_side == "TAKER" and vid in self.taker_reported:
            if self.answer_trades.get(vid) == (trade.trade_id,):
                ours.append(f"{vid}:0")
            elif f"{vid}:0:{trade.trade_id}" not in self.busted:
                self.busted.add(f"{vid}:0:{trade.trade_id}")
                part = self._trade_fill(f"{vid}:0", "", trade.asset_id, trade.side,
                                        trade.price, trade.size, Liquidity.TAKER, 0)
                log.error("polymarket: %s after it was booked as part of fill %s:0 (the post "
                          "answer's): busting that part (%s @ %s)", why, vid, part.quantity,
                          part.price)
                out.append(FillCorrection(f"{vid}:0", time.time_ns(), why, bust=True,
                                          part=trade.trade_id, quantity=part.quantity,
                                          price=part.price, fee=part.fee))
        fresh = [fid for fid in ours if fid not in self.busted]
        self.busted.update(fresh)
        if fresh:
            log.error("polymarket: %s after it was booked: busting %s", why, ", ".join(fresh))
        return [*(FillCorrection(fid, time.time_ns(), why, bust=True) for fid in fresh), *out]

    def _note_taker_trades(self, trades: Sequence[ClobTrade], held: set[str]
                           ) -> list[FillCorrection]:
        """Remember the taker trades of orders whose post is undecided (``held``) or whose
        answer's fee is checked, then run the checks they complete (:meth:`_fee_checks_of`).
        Entries of orders neither held nor checked any longer are dropped."""
        self.taker_trades = {v: t for v, t in self.taker_trades.items()
                             if v in held or v in self.fee_checks}
        touched: dict[str, None] = {}
        for trade in trades:
            vid = trade.taker_order_id
            if trade.trader_side != "TAKER" or not vid:
                continue
            if vid in held or vid in self.fee_checks:
                self.taker_trades.setdefault(vid, {})[trade.trade_id] = trade
                touched[vid] = None
            elif vid in self.unchecked_answers:
                first = self.unchecked_answers[vid]
                if first is None:
                    self.unchecked_answers[vid] = trade.price
                elif first != trade.price:  # a sweep, whose fee the ledger keeps as booked
                    del self.unchecked_answers[vid]
                    log.warning("polymarket: fill %s:0 (a post answer's, booked before a "
                                "restart) took several price levels; the answer's trade "
                                "list is gone, so its fee stays as booked (at the average "
                                "price, not the venue's per-trade fees)", vid)
        return [c for vid in touched for c in self._fee_checks_of(vid)]

    def _open_fee_check(self, venue_order_id: str, fill: Fill,
                        trade_ids: Sequence[str]) -> list[FillCorrection]:
        """Check the fee of a post answer's fill ``fill`` (``<venue order id>:0``) once the
        trades ``trade_ids`` it named are read (at once when they were read first)."""
        self.fee_checks[venue_order_id] = FeeCheck(fill.fee, tuple(dict.fromkeys(trade_ids)),
                                                   fill.quantity)
        return self._fee_checks_of(venue_order_id)

    def _fee_checks_of(self, venue_order_id: str) -> list[FillCorrection]:
        """The fee correction of the answer's fill ``<venue order id>:0`` once every trade
        of it is read: the venue charges each trade at its own price (the curve p(1-p) is
        not linear), the answer's fill was booked with the fee of its average price.  The
        fee becomes the sum of the trades' fees, FAILED ones included (each FAILED part's
        bust refunds its own fee).  None while trades are missing, or when the sum is the
        fee booked (one price level); each check runs to its end once."""
        check = self.fee_checks.get(venue_order_id)
        read = self.taker_trades.get(venue_order_id, {})
        if check is None:
            return []
        if check.trade_ids:
            if not all(t in read for t in check.trade_ids):
                return []
            trades = [read[t] for t in check.trade_ids]
        else:
            trades = list(read.values())
            sizes = {sum((t.size for t in trades), Decimal(0))}
            if check.net_of_busts:
                sizes.add(sum((t.size for t in trades if t.status != "FAILED"
                               and t.trade_id not in self.failed_trades), Decimal(0)))
            if not trades or check.quantity not in sizes:
                return []
        del self.fee_checks[venue_order_id]
        self.taker_trades.pop(venue_order_id, None)
        fill_id = f"{venue_order_id}:0"
        fee = sum((self._trade_fill(fill_id, "", t.asset_id, t.side, t.price, t.size,
                                    Liquidity.TAKER, 0).fee for t in trades), Decimal(0))
        if fee == check.fee or fill_id in self.busted:
            return []
        log.info("polymarket: fill %s (a post answer's, %d trades) booked with fee %s at its "
                 "average price; the venue charged %s (each trade at its own price): "
                 "correcting it", fill_id, len(trades), check.fee, fee)
        return [FillCorrection(fill_id, time.time_ns(), f"polymarket charged each of the "
                               f"{len(trades)} trades of the match its own price's fee",
                               fee=fee)]

    def bust_failed_of(self, venue_order_id: str) -> list[FillCorrection]:
        """Busts for the FAILED trades of ``venue_order_id`` that came before its post's
        answer (:attr:`failed_waiting`), now that the answer has booked what it reports."""
        waiting = [t for t in self.failed_waiting.values()
                   if t.taker_order_id == venue_order_id]
        out: list[FillCorrection] = []
        for trade in waiting:
            del self.failed_waiting[trade.trade_id]
            out.extend(self._busts(trade))
        return out

    def _trade_fill(self, fill_id: str, coid: str, asset_id: str, side: str, price: Decimal,
                    qty: Decimal, liquidity: Liquidity, ts_ns: int) -> Fill:
        iid = f"{C.VENUE}:{asset_id}"
        inst = self._instrument(iid)
        fee = fee_of(inst).fee(qty, price, maker=liquidity is Liquidity.MAKER) if inst else \
            Decimal(0)
        return Fill(fill_id, coid, C.VENUE, iid, Side.BUY if side == "BUY" else Side.SELL,
                    price, qty, fee, liquidity, ts_ns)

    def _adopt_found(self, post: SentOrder, found: FoundOrder) -> list[Fill]:
        """The venue holds an order whose answer we never had: its record and trades become
        the answer (OPEN, fills under the trades' ids, watched until it ends)."""
        order, coid, vid = post.order, post.client_order_id, found.venue_order_id
        self.venue_ids[coid] = vid
        fills = []
        for trade in found.trades:
            if not self.bookable(trade):
                continue
            for fill in self.fills_of_trade(trade):
                if fill.client_order_id == coid and fill.fill_id not in self._seen_trades:
                    self._seen_trades[fill.fill_id] = self.match_s(trade)
                    fills.append(fill)
        self._report([OrderUpdate(coid, OrderStatus.OPEN, time.time_ns(), vid), *fills])
        got = sum((f.quantity for f in fills), Decimal(0))
        status = str((found.row or {}).get("status", "")).upper()
        log.warning("polymarket: order %s is at the venue as %s (status %s, %s matched so far)",
                    coid, vid, status or "traded", got)
        if got >= order.quantity:
            return fills
        # Not (yet) fully filled: watched, so its remaining fills come from the trades feed
        # and its end (rest cancelled, FOK/FAK killed) follows them.
        self.watched[coid] = vid
        if post.order_type in (OrderType.FOK, OrderType.FAK) and status not in ("LIVE",
                                                                                 "DELAYED"):
            self._ending[coid] = f"{post.order_type} order killed by the venue"
        if post.order_type in (OrderType.GTC, OrderType.GTD) and status in ("LIVE", ""):
            hb = self._heartbeat()
            hb.resting.add(coid)
            hb.ensure_running()
        self._wake.set()
        return fills
