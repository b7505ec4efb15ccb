# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""ExceptionGroup: split/derive hand back exceptions, and their tracebacks, frames."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            try:
                raise ExceptionGroup('g', [ValueError(1)])
            except Exception as e:
                out = [str(e.exceptions[0].__traceback__.tb_frame.f_globals)[:100]]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
