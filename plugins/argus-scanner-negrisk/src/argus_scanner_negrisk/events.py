"""Which events a basket may be built from: the rules the kernel scan and the plain-Python
reference share."""

from __future__ import annotations

from collections.abc import Mapping

from argus_core import Event, Instrument


def repeats_a_token(ev: Event) -> bool:
    """Whether ``ev`` lists one token in two places: two outcomes naming one market, an
    outcome whose YES is its NO, or a binary whose two outcomes are one token.  Its
    outcome set is then not what it says (no basket's payout is known), and a basket would
    count one book's depth once per listing.  A binary event lists its two tokens twice,
    as each outcome's YES and NO, by design: only its two YES ids must differ."""
    if not ev.neg_risk and len(ev.outcomes) == 2:
        a, b = ev.outcomes
        return a.yes_instrument_id == b.yes_instrument_id
    tokens = [iid for o in ev.outcomes for iid in (o.yes_instrument_id, o.no_instrument_id)]
    return len(set(tokens)) < len(tokens)


#: Instrument ``meta`` flags (the Polymarket venue's) saying a token belongs to an augmented
#: negRisk event or is a placeholder outcome: the event can gain outcomes, so its listed
#: ones need not cover every result, whatever the ``Event`` says.
AUGMENTED_META = ("neg_risk_augmented", "placeholder")


def pays_on_every_outcome(ev: Event, instruments: Mapping[str, Instrument] | None = None
                          ) -> bool:
    """Whether exactly one of ``ev``'s listed outcomes must win, so a basket of one leg per
    outcome pays a known amount: ``exhaustive`` and no placeholder outcome (an augmented
    negRisk "Other" stands for outcomes not listed, and is never bought, whatever
    ``exhaustive`` says); with ``instruments``, also no leg whose instrument ``meta`` says
    it is a placeholder or of an augmented event (an ``Event`` recorded or built without
    those flags, its instruments carrying them: red team round 40)."""
    if not ev.exhaustive or any(o.placeholder for o in ev.outcomes):
        return False
    if instruments is None:
        return True
    for o in ev.outcomes:
        for iid in (o.yes_instrument_id, o.no_instrument_id):
            inst = instruments.get(iid)
            if inst is not None and any(inst.meta.get(k) is True for k in AUGMENTED_META):
                return False
    return True


def is_one_binary_market(ev: Event) -> bool:
    """Whether a two-outcome, non-negRisk event is one market: the second outcome's YES is
    the first's NO and its NO the first's YES.  Two unrelated markets' YES tokens can
    both resolve NO, so buying them pays nothing sure."""
    if len(ev.outcomes) != 2:
        return False
    a, b = ev.outcomes
    return a.no_instrument_id == b.yes_instrument_id and b.no_instrument_id == a.yes_instrument_id
