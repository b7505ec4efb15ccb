# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""A constant %-format with a mapping: one small value repeated in every field (700 MB)."""
BOMB = ('%(a)s' * 14_000) % {'a': 'x' * 50_000}


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = [len(BOMB)]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
