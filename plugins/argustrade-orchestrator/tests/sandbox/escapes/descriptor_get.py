# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""A descriptor's __get__ runs on plain attribute access; __set_name__ runs at import."""


class Sneaky:
    def __set_name__(self, owner, name):
        owner.leak = open("/etc/passwd").read()

    def __get__(self, obj, objtype=None):
        return objtype.__mro__


class Strategy:
    probe = Sneaky()

    def on_event(self, event, state, portfolio):
        state["outcome"] = [str(self.probe), str(getattr(self, "leak", ""))[:100]]
        return []
