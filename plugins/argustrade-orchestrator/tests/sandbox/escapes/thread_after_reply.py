# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Start a background thread that keeps working (and writing) after the reply is sent."""
import threading


def linger(path):
    while True:
        try:
            open(path, "a").write("x")
        except BaseException:
            pass


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            threading.Thread(target=linger, args=("/tmp/argus-escape-pwned",), daemon=True).start()
            out = ["started"]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
