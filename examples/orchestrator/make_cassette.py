"""Assemble ``cassettes/example.json`` from the answer files in ``answers/``.

The cassette holds Messages API responses in the documented shape
(https://docs.anthropic.com/en/api/messages): ``id, type: "message", role, model,
content: [{type: "text", text}], stop_reason, stop_sequence, usage``; errors as
``{"type": "error", "error": {"type", "message"}}`` with the documented status codes
(429 rate_limit_error with ``retry-after``; 529 overloaded_error).  Run it after editing
an answer: ``python examples/orchestrator/make_cassette.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
GENERATE = "claude-opus-5-5"
REVIEW = "claude-sonnet-5-5"


def message(n: int, model: str, text: str, input_tokens: int,
            stop_reason: str = "end_turn") -> dict:
    """A 200 response carrying one text block."""
    return {"request": {"method": "POST", "path": "/v1/messages", "model": model},
            "response": {"status": 200, "headers": {"request-id": f"req_example_{n:03d}"},
                         "json": {"id": f"msg_example_{n:03d}", "type": "message",
                                  "role": "assistant", "model": model,
                                  "content": [{"type": "text", "text": text}],
                                  "stop_reason": stop_reason, "stop_sequence": None,
                                  "usage": {"input_tokens": input_tokens,
                                            "output_tokens": max(1, len(text) // 4)}}}}


def error(model: str, status: int, kind: str, text: str, headers: dict | None = None) -> dict:
    """A documented error response."""
    return {"request": {"method": "POST", "path": "/v1/messages", "model": model},
            "response": {"status": status, "headers": headers or {},
                         "json": {"type": "error", "error": {"type": kind, "message": text},
                                  "request_id": f"req_error_{status}"}}}


def answer(name: str) -> str:
    """Text of one recorded answer."""
    return (HERE / "answers" / name).read_text()


def main() -> None:
    """Write the example cassette: three cycles, with a rate limit and an overload."""
    interactions = [
        # cycle 1: rate limited once (the SDK retries after retry-after), then answers.
        error(GENERATE, 429, "rate_limit_error", "Number of request tokens has exceeded "
              "your per-minute rate limit", {"retry-after": "1", "retry-after-ms": "20"}),
        message(1, GENERATE, answer("cycle1_generate.md"), 3900),
        message(2, REVIEW, answer("cycle1_review.md"), 4100),
        # cycle 2: overloaded once, then an escape attempt the reviewer and filter refuse.
        error(GENERATE, 529, "overloaded_error", "Overloaded", {"retry-after-ms": "20"}),
        message(3, GENERATE, answer("cycle2_generate.md"), 4300),
        message(4, REVIEW, answer("cycle2_review.md"), 4000),
        # cycle 3: an approved one-bar momentum flipper; the gates kill it for overtrading.
        message(5, GENERATE, answer("cycle3_generate.md"), 4500),
        message(6, REVIEW, answer("cycle3_review.md"), 4200),
    ]
    out = HERE / "cassettes" / "example.json"
    out.write_text(json.dumps({"interactions": interactions}, indent=1) + "\n")
    print(f"wrote {out} ({len(interactions)} interactions)")


if __name__ == "__main__":
    main()
