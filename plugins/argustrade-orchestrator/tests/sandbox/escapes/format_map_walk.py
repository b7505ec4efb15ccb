# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""str.format_map with a mapping: '{f.__globals__[__builtins__]}'.format_map({...})."""


def leak():
    return 0


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = ["{f.__globals__[__builtins__]}".format_map({"f": leak})[:200]]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
