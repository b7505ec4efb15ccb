"""Which events a basket may be built from: the rule the kernel scan and the plain-Python
reference share."""

from __future__ import annotations

from argus_core import Event


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
