# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""_posixsubprocess.fork_exec: spawn a process without the subprocess audit event."""
import _posixsubprocess


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = [_posixsubprocess.fork_exec([b'/bin/cat'], [b'/bin/cat', event['secret_path'].encode()], True, (), None, None, -1, -1, -1, -1, -1, -1, -1, -1, False, False, None, None, None, -1, None, False)]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
