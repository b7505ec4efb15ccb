# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Match patterns with dotted value patterns and guards that walk attributes."""
import statistics


class Strategy:
    def on_event(self, event, state, portfolio):
        out = []
        match event:
            case {"type": "bar"} if (s := statistics.sys):
                try:
                    out.append(s.modules["os"].getcwd())
                except BaseException as exc:
                    out.append("blocked: " + type(exc).__name__)
            case _:
                pass
        state["outcome"] = out
        return []
