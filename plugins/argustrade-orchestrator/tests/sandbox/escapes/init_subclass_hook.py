# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""__init_subclass__ runs code in the base class when a subclass is defined (at import)."""


class Base:
    def __init_subclass__(cls, **kwargs):
        cls.leak = open("/etc/passwd").read()


class Strategy(Base):
    def on_event(self, event, state, portfolio):
        state["outcome"] = [self.leak[:200]]
        return []
