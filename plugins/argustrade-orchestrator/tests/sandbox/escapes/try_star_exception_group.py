# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""except* and ExceptionGroup: exception internals and tracebacks through a new syntax."""


class Strategy:
    def on_event(self, event, state, portfolio):
        out = []
        try:
            raise ExceptionGroup("g", [ValueError("v")])
        except* ValueError as group:
            out.append(str(group.exceptions[0].__traceback__.tb_frame.f_globals)[:100])
        state["outcome"] = out
        return []
