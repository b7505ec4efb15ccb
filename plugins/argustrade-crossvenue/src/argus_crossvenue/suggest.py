"""Mapping suggestions: Kalshi markets and Polymarket markets whose texts read alike.

Every Kalshi market (title and rules) and every Polymarket market (question) of the two
configured venues is embedded by scikit-learn's ``TfidfVectorizer`` (English stop words,
word 1-2 grams, sublinear tf, fitted on both venues' texts together); each pair across
the venues with cosine similarity ``>= threshold`` is a candidate, most similar first.

A suggestion is only text for a person: it never enters a scan or an order.  Two markets
that read alike may still resolve differently (another source, another date, another
threshold), so a person checks the rules and writes the pair into the mapping file.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np

from argus_core import Instrument


@attrs.frozen
class Suggestion:
    """A candidate pair: the Kalshi market, the Polymarket YES token, their texts and
    cosine similarity."""

    similarity: float
    kalshi_ticker: str
    kalshi_text: str
    polymarket_token: str
    polymarket_outcome: str
    polymarket_text: str

    def as_toml(self, name: str) -> str:
        """A ``[[pairs]]`` skeleton for the mapping file (sources and dates to be filled
        in by the person who checked both rules)."""
        return (f"[[pairs]]\nname = \"{name}\"\nrelation = \"same\"\n"
                f"[pairs.kalshi]\nticker = \"{self.kalshi_ticker}\"\nside = \"yes\"\n"
                f"resolution_source = \"?\"\nsettles = \"YYYY-MM-DD\"\n"
                f"[pairs.polymarket]\ntoken_id = \"{self.polymarket_token}\"\n"
                f"outcome = \"{self.polymarket_outcome}\"\nresolution_source = \"?\"\n"
                f"settles = \"YYYY-MM-DD\"\n")


def kalshi_markets(instruments: Sequence[Instrument]) -> dict[str, str]:
    """Kalshi ticker -> text (title and rules) of every YES contract."""
    out: dict[str, str] = {}
    for inst in instruments:
        if inst.venue == "kalshi" and inst.meta.get("is_yes"):
            meta = inst.meta
            out[str(meta.get("ticker", inst.symbol))] = " ".join(
                str(meta.get(k) or "") for k in ("title", "outcome", "rules")).strip()
    return out


def polymarket_markets(instruments: Sequence[Instrument]) -> dict[str, tuple[str, str]]:
    """Polymarket YES token -> (its outcome name, the market's question)."""
    out: dict[str, tuple[str, str]] = {}
    for inst in instruments:
        if inst.venue == "polymarket" and inst.meta.get("is_yes"):
            meta = inst.meta
            text = str(meta.get("question") or meta.get("outcome") or "")
            out[inst.symbol] = (str(meta.get("token_outcome", "Yes")), text)
    return out


def suggest(instruments: Sequence[Instrument], threshold: float = 0.3,
            limit: int = 20) -> list[Suggestion]:
    """Cross-venue candidates with TF-IDF cosine similarity ``>= threshold``, most
    similar first (at most ``limit``)."""
    kalshi = kalshi_markets(instruments)
    poly = polymarket_markets(instruments)
    if not kalshi or not poly:
        return []
    from sklearn.feature_extraction.text import (  # type: ignore[import-untyped]  # scikit-learn ships no type information
        TfidfVectorizer,  # heavy import: only when suggestions are asked for
    )

    k_keys, p_keys = list(kalshi), list(poly)
    texts = [kalshi[k] for k in k_keys] + [poly[p][1] for p in p_keys]
    vec = TfidfVectorizer(stop_words="english", ngram_range=(1, 2), sublinear_tf=True,
                          token_pattern=r"(?u)\b\w[\w.]*\b")
    try:
        x = vec.fit_transform(texts)
    except ValueError:  # every text was stop words only
        return []
    # rows are L2-normalised, so the product is the cosine similarity
    sims = np.asarray((x[:len(k_keys)] @ x[len(k_keys):].T).todense())
    found = [Suggestion(float(sims[i, j]), k_keys[i], kalshi[k_keys[i]], p_keys[j],
                        poly[p_keys[j]][0], poly[p_keys[j]][1])
             for i, j in zip(*np.nonzero(sims >= threshold), strict=True)]
    found.sort(key=lambda s: (-s.similarity, s.kalshi_ticker, s.polymarket_token))
    return found[:limit]
