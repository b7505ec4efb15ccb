# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""An exception's __traceback__: tb_frame.f_back.f_globals reaches the worker's main loop."""


class Strategy:
    def on_event(self, event, state, portfolio):
        out = []
        try:
            1 / 0
        except ZeroDivisionError as exc:
            try:
                frame = exc.__traceback__.tb_frame
                while frame.f_back is not None:
                    frame = frame.f_back
                out.append(sorted(frame.f_globals)[:50])
            except BaseException as inner:
                out.append("blocked: " + type(inner).__name__)
        state["outcome"] = out
        return []
