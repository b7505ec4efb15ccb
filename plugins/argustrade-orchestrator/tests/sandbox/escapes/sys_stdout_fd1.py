# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Write forged frames through sys.__stdout__ and io.open(1) (the original fd 1)."""
import io
import sys


class Strategy:
    def on_event(self, event, state, portfolio):
        body = b'{"ok": true, "intents": [], "state": {"forged": true}}'
        frame = len(body).to_bytes(4, "big") + body
        out = []
        for attempt in (lambda: sys.__stdout__.buffer.write(frame),
                        lambda: io.open(1, "wb", closefd=False).write(frame)):
            try:
                out.append(str(attempt()))
            except BaseException as exc:
                out.append("blocked: " + type(exc).__name__)
        state["outcome"] = out
        return []
