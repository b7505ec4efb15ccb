"""Which events a basket may be built from: the rules the kernel scan and the plain-Python
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


def pays_on_every_outcome(ev: Event) -> bool:
    """Whether exactly one of ``ev``'s listed outcomes must win, so a basket of one leg per
    outcome pays a known amount: ``exhaustive`` and no placeholder outcome (an augmented
    negRisk "Other" stands for outcomes not listed, and is never bought, whatever
    ``exhaustive`` says)."""
    return ev.exhaustive and not any(o.placeholder for o in ev.outcomes)


def is_one_binary_market(ev: Event) -> bool:
    """Whether a two-outcome, non-negRisk event is one market: the second outcome's YES is
    the first's NO and its NO the first's YES.  Two unrelated markets' YES tokens can
    both resolve NO, so buying them pays nothing sure."""
    if len(ev.outcomes) != 2:
        return False
    a, b = ev.outcomes
    return a.no_instrument_id == b.yes_instrument_id and b.no_instrument_id == a.yes_instrument_id
