# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""A decorator runs at import: an arbitrary expression decorator (PEP 614) reads a file."""


@(lambda f: open("/etc/passwd").read() and f)
def helper():
    return 1


class Strategy:
    @staticmethod
    @(lambda f: f)
    def tool():
        return 2

    def on_event(self, event, state, portfolio):
        return []
