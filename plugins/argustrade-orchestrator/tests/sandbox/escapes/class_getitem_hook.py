# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""__class_getitem__ runs code when a class is subscripted, e.g. in an annotation at import."""


class Trap:
    def __class_getitem__(cls, item):
        return open(item).read()


def probe(x: Trap["/etc/passwd"]):
    return x


class Strategy:
    def on_event(self, event, state, portfolio):
        state["outcome"] = [str(probe.__annotations__)[:200]]
        return []
