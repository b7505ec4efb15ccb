# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""global rebinding of a module name from inside a call: replace a helper other code trusts."""
LIMIT = 4


def widen():
    global LIMIT
    LIMIT = 10**6


class Strategy:
    def on_event(self, event, state, portfolio):
        widen()
        state["outcome"] = [LIMIT]
        return []
