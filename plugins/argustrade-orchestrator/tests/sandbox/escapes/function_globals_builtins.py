# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""A function's __globals__["__builtins__"]["__import__"]("os")."""


def anything():
    return 0


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            b = anything.__globals__["__builtins__"]
            imp = b["__import__"] if isinstance(b, dict) else b.__import__
            out = [imp("os").system("touch %s/pwned" % event["host_dir"])]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
