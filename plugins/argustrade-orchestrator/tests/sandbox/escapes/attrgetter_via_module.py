# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""operator.attrgetter reached through a permitted module (fractions.operator)."""
import fractions


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            get = [fractions][0].operator.attrgetter("__class__.__base__.__subclasses__")
            out = [str(get(())())[:200]]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
