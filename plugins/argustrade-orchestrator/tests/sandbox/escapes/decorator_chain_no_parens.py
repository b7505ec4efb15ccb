# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Decorators as calls without parentheses: @print @set @open over a lambda."""
@print
@set
@open
@(lambda f: '/etc/passwd')
def leak():
    pass


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = [sorted(leak)[:5]]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
