# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""AttributeError.obj hands back the object a failed lookup was made on."""
import statistics


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            try:
                statistics.nope
            except AttributeError as e:
                out = [str(e.obj.sys.modules['os'].environ)[:200]]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
