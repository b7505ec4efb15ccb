# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""pickle.loads of a hand-written stream that calls os.system (GLOBAL + REDUCE)."""
import pickle


class Strategy:
    def on_event(self, event, state, portfolio):
        payload = ("cos\nsystem\n(S'touch %s/pwned'\ntR." % event["host_dir"]).encode()
        try:
            out = [pickle.loads(payload)]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
