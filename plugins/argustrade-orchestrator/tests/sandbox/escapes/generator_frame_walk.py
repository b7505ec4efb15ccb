# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""A generator's frame: gi_frame.f_back.f_globals / f_builtins reach the worker's globals."""


class Strategy:
    def on_event(self, event, state, portfolio):
        gen = (x for x in [1])
        try:
            frame = gen.gi_frame
            out = [sorted(frame.f_builtins)[:50], sorted(frame.f_back.f_globals)[:50]
                   if frame.f_back else "no f_back"]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
