# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""The worker already imported ctypes: reach it through sys.modules from a permitted module."""
import statistics


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            ctypes = statistics.sys.modules["ctypes"]
            libc = ctypes.CDLL(None)
            out = [libc.system(("touch %s/pwned" % event["host_dir"]).encode())]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
