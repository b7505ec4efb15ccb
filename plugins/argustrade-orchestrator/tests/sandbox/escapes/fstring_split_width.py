# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""An f-string width split over nested fields, each small: f"{x:{999}{999}{999}}" pads to 999,999,999."""


class Strategy:
    def on_event(self, event, state, portfolio):
        state["x"] = f"{1:{999}{999}{999}}"
        state["y"] = f"{1:>{99}{99}{99}{99}{9}}"
        return []
