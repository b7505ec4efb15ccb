"""An independent Kraken v2 book reference and seeded random book messages (with
their checksums), for tests and the benchmark."""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

# -- reference book ------------------------------------------------------------------------


def _level_text(value: Decimal, decimals: int) -> str:
    return format(value, f".{decimals}f").replace(".", "").lstrip("0")


class ReferenceBook:
    """The plain-Python reference: Decimal ladders, full sort and formatting every time."""

    def __init__(self, depth: int, price_decimals: int, lot_decimals: int) -> None:
        self.depth = depth
        self.pd = price_decimals
        self.ld = lot_decimals
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}

    def apply(self, bids: list[dict[str, Any]], asks: list[dict[str, Any]]) -> int:
        """Apply levels in order, truncate to depth, return the checksum."""
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for level in levels:
                price, qty = Decimal(str(level["price"])), Decimal(str(level["qty"]))
                if qty == 0:
                    side.pop(price, None)
                else:
                    side[price] = qty
        self.bids = dict(sorted(self.bids.items(), reverse=True)[: self.depth])
        self.asks = dict(sorted(self.asks.items())[: self.depth])
        return self.checksum()

    def checksum(self) -> int:
        """Kraken's guide, step by step."""
        text = ""
        for price, qty in sorted(self.asks.items())[:10]:
            text += _level_text(price, self.pd) + _level_text(qty, self.ld)
        for price, qty in sorted(self.bids.items(), reverse=True)[:10]:
            text += _level_text(price, self.pd) + _level_text(qty, self.ld)
        return zlib.crc32(text.encode())

    def top(self) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """(bids best first, asks best first)."""
        return sorted(self.bids.items(), reverse=True), sorted(self.asks.items())


def _num(value: Decimal) -> str:
    # Kraken sends JSON numbers: shortest text, no padding ("0.1", not "0.10000000").
    text = format(value.normalize(), "f")
    return text


def random_book_messages(snapshot: dict[str, Any], n: int, *, seed: int, price_decimals: int,
                         lot_decimals: int, depth: int = 10, symbol: str = "BTC/USD",
                         start_ns: int = 1_700_000_000_000_000_000
                         ) -> Iterator[dict[str, Any]]:
    """A seeded random walk of v2 ``book`` update data items around ``snapshot``.

    Each item is what ``json.loads(frame, parse_float=str)["data"][0]`` would
    give: ``symbol``, ``bids``/``asks`` level lists with unpadded decimal
    text, ``checksum`` (from :class:`ReferenceBook`) and ``timestamp``.
    Updates change quantities, delete levels (refilling the depth from
    below, as Kraken does) and insert levels that push the worst one out.
    """
    rng = random.Random(seed)
    tick = Decimal(1).scaleb(-price_decimals)
    lot = Decimal(1).scaleb(-lot_decimals)
    ref = ReferenceBook(depth, price_decimals, lot_decimals)
    ref.apply(snapshot["bids"], snapshot["asks"])

    def qty() -> Decimal:
        return (Decimal(rng.randint(1, 400_000_000)) * lot).quantize(lot)

    for i in range(n):
        bids, asks = ref.top()
        is_bid = rng.random() < 0.5
        levels = bids if is_bid else asks
        other = asks if is_bid else bids
        changes: list[tuple[Decimal, Decimal]] = []
        roll = rng.random()
        if roll < 0.55 and levels:
            price = levels[min(int(rng.expovariate(0.4)), len(levels) - 1)][0]
            changes.append((price, qty()))
        elif roll < 0.75 and len(levels) > 1:
            price = levels[min(int(rng.expovariate(0.4)), len(levels) - 1)][0]
            worst = levels[-1][0]
            gap = tick * rng.randint(1, 5)
            refill = worst - gap if is_bid else worst + gap
            changes.append((price, Decimal(0)))
            if refill > 0:
                changes.append((refill, qty()))
        else:
            best = levels[0][0] if levels else (other[0][0] if other else Decimal(1000))
            step = tick * rng.randint(-3, 6)
            price = best + step if is_bid else best - step
            if other:
                limit = other[0][0]
                price = min(price, limit - tick) if is_bid else max(price, limit + tick)
            if price > 0:
                changes.append((price, qty()))
        if not changes:
            changes.append((levels[0][0], qty()))
        side_levels = [{"price": _num(p), "qty": _num(q) if q else "0"} for p, q in changes]
        item: dict[str, Any] = {"symbol": symbol, "bids": side_levels if is_bid else [],
                "asks": [] if is_bid else side_levels}
        item["checksum"] = ref.apply(item["bids"], item["asks"])
        item["timestamp"] = _rfc3339(start_ns + i * 1_000_000)
        yield item


def recentre_book(ref: ReferenceBook, mid: Decimal, rng: random.Random, *, symbol: str,
                  ts_ns: int, half_spread_ticks: int = 3, max_step_ticks: int = 4,
                  qty_range: tuple[Decimal, Decimal] = (Decimal("0.05"), Decimal("0.6"))
                  ) -> dict[str, Any]:
    """A v2 ``book`` update item that moves ``ref`` to a fresh ladder around ``mid``.

    Every current level not in the new ladder is deleted (qty 0) and ``depth``
    new levels per side are inserted, a few ticks apart, with seeded random
    quantities; ``ref`` is updated and the item carries its checksum.  This is
    how a replayed price path (e.g. bar closes) gets a book that follows it.
    """
    tick = Decimal(1).scaleb(-ref.pd)
    lot = Decimal(1).scaleb(-ref.ld)
    centre = (mid / tick).to_integral_value() * tick
    lo, hi = (int(q / lot) for q in qty_range)

    def ladder(sign: int) -> dict[Decimal, Decimal]:
        price = centre + sign * half_spread_ticks * tick
        levels = {}
        for _ in range(ref.depth):
            levels[price] = Decimal(rng.randint(lo, hi)) * lot
            price += sign * rng.randint(1, max_step_ticks) * tick
        return levels

    new_bids, new_asks = ladder(-1), ladder(+1)
    bids = [{"price": _num(p), "qty": "0"} for p in ref.bids if p not in new_bids]
    bids += [{"price": _num(p), "qty": _num(q)} for p, q in new_bids.items()]
    asks = [{"price": _num(p), "qty": "0"} for p in ref.asks if p not in new_asks]
    asks += [{"price": _num(p), "qty": _num(q)} for p, q in new_asks.items()]
    item: dict[str, Any] = {"symbol": symbol, "bids": bids, "asks": asks}
    item["checksum"] = ref.apply(bids, asks)
    item["timestamp"] = _rfc3339(ts_ns)
    return item


def _rfc3339(ts_ns: int) -> str:
    from datetime import UTC, datetime

    seconds, frac = divmod(ts_ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def _parse_rfc3339_ns(text: str) -> int:
    from datetime import datetime

    head, _, frac = text.rstrip("Z").partition(".")
    seconds = int(datetime.fromisoformat(head + "+00:00").timestamp())
    if frac and not frac.isdigit():
        raise ValueError(text)
    return seconds * 10**9 + int((frac + "000000000")[:9] or 0)


def book_frame(kind: str, item: dict[str, Any]) -> str:
    """A v2 book frame with prices/qtys as JSON *numbers* (as Kraken sends them)."""
    def level(lv: dict[str, Any]) -> str:
        return f'{{"price":{lv["price"]},"qty":{lv["qty"]}}}'

    bids = ",".join(level(lv) for lv in item["bids"])
    asks = ",".join(level(lv) for lv in item["asks"])
    extra = f',"timestamp":"{item["timestamp"]}"' if item.get("timestamp") else ""
    return (f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{item["symbol"]}",'
            f'"bids":[{bids}],"asks":[{asks}],"checksum":{item["checksum"]}{extra}}}]}}')


