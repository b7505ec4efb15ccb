# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Format widths that build huge strings from tiny literals: '%0999999999d' and f"{1:>999999999}"."""


class Strategy:
    def on_event(self, event, state, portfolio):
        state["a"] = "%0999999999d" % 1
        state["b"] = f"{1:>999999999}"
        state["c"] = "x".ljust(3_000_000_000)
        return []
