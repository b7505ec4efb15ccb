# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""A module constant of one dict repeated 10**9 times: 8 GB built at import."""
TABLE = ({},) * 10**9


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = [len(TABLE)]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
