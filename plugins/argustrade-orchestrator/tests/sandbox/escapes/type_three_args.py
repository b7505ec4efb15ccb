# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""type(name, bases, dict) builds classes dynamically, with dunders and bases."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            Evil = type("Evil", (object,), {"__getattr__": lambda self, n: n})
            out = [str(Evil.__mro__), str(type(()).__base__.__subclasses__())[:200]]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
