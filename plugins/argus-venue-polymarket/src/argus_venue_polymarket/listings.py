"""What a discovery run during the stream changes: markets listed after the start (the
15-minute crypto up/down markets are listed every 15 minutes), markets that stopped
taking orders, events that gained or lost outcomes.

:func:`listing_changes` compares a new discovery with what the stream has said so far
and returns what it must say now: each new or changed ``Instrument`` (its rules, or its
``meta``: an instrument's ``meta`` is left out of its equality, so it is compared here),
each new or changed core ``Event``, and the tradeable tokens the websocket does not
follow yet.  A market discovery no longer lists (its event closed, or it left the
configured filters) is not a change: what is known of it stays, and the resolution poll
follows it to its settlement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs

from argus_core import Event, Instrument


@attrs.frozen
class Listing:
    """What the stream says after a discovery: ``instruments`` and ``events`` new or
    changed since it last said them (instruments first: an event names them), and the
    ``new_tokens`` to subscribe (tradeable, not followed yet), in discovery order."""

    instruments: list[Instrument]
    events: list[Event]
    new_tokens: list[str]

    def __bool__(self) -> bool:
        return bool(self.instruments or self.events or self.new_tokens)


def listing_changes(known_instruments: Mapping[str, Instrument],
                    known_events: Mapping[str, Event], events: Iterable[Event],
                    instruments: Iterable[Instrument], followed: Iterable[str]) -> Listing:
    """The :class:`Listing` of a discovery (``events``, ``instruments``) against what is
    known (by instrument id and event id) and the tokens ``followed`` (the stream's, and
    those settled: never subscribed again)."""
    found = list(instruments)
    changed = [inst for inst in found
               if (old := known_instruments.get(inst.id)) is None
               or old != inst or old.meta != inst.meta]
    moved = [ev for ev in events if known_events.get(ev.event_id) != ev]
    following = set(followed)
    tokens = [inst.symbol for inst in found
              if inst.meta.get("tradeable") and inst.symbol not in following]
    return Listing(changed, moved, list(dict.fromkeys(tokens)))
