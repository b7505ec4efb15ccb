# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""heapq.merge returns a generator: its gi_frame.f_globals is heapq's module."""
import heapq


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            gen = heapq.merge([1], [2])
            next(gen)
            out = [str(gen.gi_frame.f_globals)[:200]]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
