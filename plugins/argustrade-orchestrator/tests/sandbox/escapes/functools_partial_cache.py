# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""functools.partial / lru_cache / singledispatch objects carry func and registry internals."""
from functools import lru_cache, partial


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            p = partial(str.join, ",")
            cached = lru_cache(maxsize=None)(len)
            out = [p.func.__self__, cached.__wrapped__.__self__.__dict__["open"]]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = [str(o)[:100] for o in out]
        return []
