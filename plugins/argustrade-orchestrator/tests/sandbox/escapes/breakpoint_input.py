# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""breakpoint()/input()/help() read the worker's stdin, which is the protocol stream."""


class Strategy:
    def on_event(self, event, state, portfolio):
        out = []
        for attempt in (lambda: input(), lambda: breakpoint(), lambda: help("os")):
            try:
                out.append(str(attempt())[:100])
            except BaseException as exc:
                out.append("blocked: " + type(exc).__name__)
        state["outcome"] = out
        return []
