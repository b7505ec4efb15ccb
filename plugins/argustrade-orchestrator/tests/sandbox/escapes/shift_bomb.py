# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""A left shift that builds a 1.25 GB integer at import: 1 << 10_000_000_000."""
BIG = 1 << 10_000_000_000


class Strategy:
    def on_event(self, event, state, portfolio):
        return []
