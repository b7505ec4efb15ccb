# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""A metaclass runs arbitrary code when the class statement executes (at import)."""


class Meta(type):
    def __new__(mcs, name, bases, ns):
        ns["leak"] = open("/etc/passwd").read()
        return super().__new__(mcs, name, bases, ns)


class Strategy(metaclass=Meta):
    def on_event(self, event, state, portfolio):
        state["outcome"] = [self.leak[:200]]
        return []
