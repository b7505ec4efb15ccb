"""Batching and rate limiting, on a fake clock: many notices make one message per
interval, critical ones go first and are never dropped, the cap and spacing hold, a 429
pauses everything, and an over-long line is cut to valid text."""

from __future__ import annotations

import itertools

import pytest
from argus_telegram.outbox import MAX_MESSAGE_CHARS, Notice, Outbox, RateLimiter, cut_html
from argus_testkit import FakeClock


def test_notices_wait_for_the_batch_interval_then_go_as_one_message() -> None:
    clock = FakeClock()
    box = Outbox(clock=clock.time)
    assert box.due_in(3.0) is None and box.take() is None
    for i in range(5):
        box.put(Notice("fills", f"fill {i}"))
        clock.advance(0.5)
    assert box.due_in(3.0) == pytest.approx(0.5)  # counted from the first notice
    clock.advance(0.5)
    assert box.due_in(3.0) == 0
    assert box.take() == "\n".join(f"fill {i}" for i in range(5))
    assert box.due_in(3.0) is None and len(box) == 0


def test_a_critical_notice_is_due_at_once_and_goes_first() -> None:
    clock = FakeClock()
    box = Outbox(clock=clock.time)
    box.put(Notice("fills", "fill 1"))
    box.put(Notice("states", "HALTED", critical=True))
    assert box.has_critical() and box.due_in(3.0) == 0
    assert box.take() == "HALTED\nfill 1"


def test_overflow_drops_the_oldest_ordinary_notices_never_a_critical_one_and_says_so() -> None:
    box = Outbox(max_pending=10, clock=FakeClock().time)
    box.put(Notice("states", "HALTED", critical=True))
    for i in range(25):
        box.put(Notice("fills", f"fill {i}"))
    text = box.take()
    assert text is not None
    lines = text.splitlines()
    assert lines[0] == "HALTED"
    assert lines[1:11] == [f"fill {i}" for i in range(15, 25)]
    assert "15 older notifications dropped" in lines[-1]
    assert box.take() is None


def test_what_does_not_fit_in_one_message_stays_queued_and_is_due_at_once() -> None:
    clock = FakeClock()
    box = Outbox(max_pending=1000, clock=clock.time)
    line = "x" * 99
    for _ in range(100):  # 10,000 characters: three messages
        box.put(Notice("fills", line))
    first = box.take()
    assert first is not None and len(first) <= MAX_MESSAGE_CHARS
    assert box.due_in(60.0) == 0  # the rest already waited a whole interval
    sizes = [len(first)]
    while (text := box.take()) is not None:
        sizes.append(len(text))
        assert len(text) <= MAX_MESSAGE_CHARS
    assert sum(s + 1 for s in sizes) == 100 * 100  # every line, once


def test_put_back_returns_an_unsent_message_to_the_front() -> None:
    box = Outbox(clock=FakeClock().time)
    box.put(Notice("fills", "later"))
    box.put_back("HALTED\nfill 1")
    assert box.has_critical() and box.take() == "HALTED\nfill 1\nlater"


def test_a_huge_line_is_cut_to_plain_text_without_a_broken_tag_or_entity() -> None:
    html = "<b>Risk</b> " + "a&amp;b " * 1000
    cut = cut_html(html, 100)
    assert len(cut) <= 100 and "<" not in cut and cut.endswith("…")
    assert not cut[:-1].rstrip("a b;").endswith("&am")  # no partial entity at the end
    box = Outbox(clock=FakeClock().time)
    box.put(Notice("risk", html))
    text = box.take()
    assert text is not None and len(text) <= MAX_MESSAGE_CHARS and "<b>" not in text


def test_the_rate_limiter_spaces_messages_and_caps_them_per_minute() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_minute=3, min_interval_s=1.0, clock=clock.time)
    sent_at = []
    while clock.time() < 1_700_000_000.0 + 130:
        if limiter.wait_s() == 0:
            limiter.sent()
            sent_at.append(clock.time())
        clock.advance(0.25)
    gaps = [b - a for a, b in itertools.pairwise(sent_at)]
    assert min(gaps) >= 1.0
    for t in sent_at:  # never more than 3 in any 60 s window
        assert sum(t <= u < t + 60 for u in sent_at) <= 3
    assert len(sent_at) == 9  # and the cap does not starve it: 3 per minute, 3 windows


def test_a_flood_answer_pauses_everything_and_replies_skip_only_the_cap() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_minute=1, min_interval_s=1.0, clock=clock.time)
    limiter.sent()
    clock.advance(2)
    assert limiter.wait_s() == pytest.approx(58)  # capped
    assert limiter.wait_s(capped=False) == 0  # a reply to a person may go
    limiter.pause(5)
    assert limiter.wait_s(capped=False) == pytest.approx(5)
