# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Import-time work in a default value: a 3-billion-character string built at load."""


def f(x="a" * 3_000_000_000):
    return x


class Strategy:
    def on_event(self, event, state, portfolio):
        return []
