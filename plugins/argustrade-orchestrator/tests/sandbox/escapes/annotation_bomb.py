# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Import-time work in an annotation: def f(x: 10**10**8) computes a 330-million-bit int."""


def f(x: 10**10**8):
    return x


class Strategy:
    def on_event(self, event, state, portfolio):
        return []
