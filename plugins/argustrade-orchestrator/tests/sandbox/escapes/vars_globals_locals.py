# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""vars(), globals() and locals() hand out namespaces holding __builtins__."""


class Strategy:
    def on_event(self, event, state, portfolio):
        out = []
        for attempt in (lambda: globals()["__builtins__"], lambda: vars(self),
                        lambda: locals(), lambda: dir(self)):
            try:
                out.append(str(attempt())[:100])
            except BaseException as exc:
                out.append("blocked: " + type(exc).__name__)
        state["outcome"] = out
        return []
