# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""A module-level "constant" that builds 8 GB at import: (1,) * 10**9."""
BLOB = (1,) * 10**9


class Strategy:
    def on_event(self, event, state, portfolio):
        return []
