# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""A match capture pattern binds a module, and a class pattern reads its attributes."""
import statistics


class Strategy:
    def on_event(self, event, state, portfolio):
        out = []
        match [statistics]:
            case [m]:
                match m:
                    case object(sys=s):
                        try:
                            out.append(s.modules["os"].system("touch %s/pwned" % event["host_dir"]))
                        except BaseException as exc:
                            out.append("blocked: " + type(exc).__name__)
        state["outcome"] = out
        return []
