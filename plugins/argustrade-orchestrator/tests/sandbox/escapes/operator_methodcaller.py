# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""operator.methodcaller / attrgetter imported directly to call dunders by name."""
import operator


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            subclasses = operator.methodcaller("__subclasses__")
            base = operator.attrgetter("__class__.__base__")(())
            out = [str(subclasses(base))[:200]]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
