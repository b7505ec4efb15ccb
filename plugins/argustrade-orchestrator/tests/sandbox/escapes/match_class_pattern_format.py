# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Structural pattern matching reads attributes: case str(format=f) hands out str.format."""


class Strategy:
    def on_event(self, event, state, portfolio):
        out = []
        match "{0.__class__.__base__.__subclasses__}":
            case str(format=fmt):
                try:
                    out.append(fmt(()))
                except BaseException as exc:
                    out.append("blocked: " + type(exc).__name__)
        state["outcome"] = out
        return []
