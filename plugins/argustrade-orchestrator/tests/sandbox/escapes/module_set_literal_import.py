# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""A plain literal module constant with no operator around it: a set (or dict key) of a nested tuple hashed at import."""
SEEN = {((0.5,) * 99_999,) * 99_999}
TABLE = {((2,) * 99_999,) * 99_999: "slow"}


class Strategy:
    def on_event(self, event, state, portfolio):
        return []
