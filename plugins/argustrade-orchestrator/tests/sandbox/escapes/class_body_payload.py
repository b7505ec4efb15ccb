# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""A class body runs at import: statements and calls hidden between the methods."""


class Strategy:
    LEAK = open("/etc/passwd").read()
    for _i in range(3):
        LEAK += str(_i)

    def on_event(self, event, state, portfolio):
        state["outcome"] = [self.LEAK[:200]]
        return []
