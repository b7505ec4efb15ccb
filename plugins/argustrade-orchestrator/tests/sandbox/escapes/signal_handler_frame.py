# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""A signal handler receives the interrupted frame (f_globals, f_builtins)."""
import _signal


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            frames = []
            _signal.signal(2, lambda n, f: frames.append(f.f_globals))
            _signal.raise_signal(2)
            out = [str(frames)[:200]]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
