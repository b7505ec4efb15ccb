# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""A '%' of a nested constant: folding it would print 10**10 items (30 GB) inside the checker, in the host's process."""


class Strategy:
    def on_event(self, event, state, portfolio):
        state["x"] = "%s" % ((((1,) * 99_999,) * 99_999),)
        return []
