# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""A '%' mapping key with nested parentheses hides the width after it: '%(()x)999999999s' builds 1 GB."""


class Strategy:
    def on_event(self, event, state, portfolio):
        state["x"] = "%(()x)999999999s" % {"()x": 1}
        return []
