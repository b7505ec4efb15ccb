# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Answer with a reply far larger than any frame limit."""
class Strategy:
    def on_event(self, event, state, portfolio):
        state["blob"] = "x" * (64 * 1024 * 1024)
        return []
