# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Octal and hex escapes spell a forbidden module name past a text filter."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = [__import__('\157\163').listdir('/')]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
