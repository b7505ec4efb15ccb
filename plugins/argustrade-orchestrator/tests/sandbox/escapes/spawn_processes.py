# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Run shell commands: os.system, posix_spawn, fork, exec (subprocess is not importable
inside the worker, so go straight to the os primitives it uses)."""
import os


class Strategy:
    def on_event(self, event, state, portfolio):
        out = []
        marker = event["host_dir"] + "/pwned"
        attempts = [
            lambda: os.system("touch " + marker),
            lambda: os.posix_spawn("/bin/sh", ["sh", "-c", "touch " + marker], {}),
            lambda: os.fork(),
            lambda: os.execv("/bin/sh", ["sh", "-c", "touch " + marker]),
        ]
        for attempt in attempts:
            try:
                out.append("ran: %r" % (attempt(),))
            except BaseException as exc:
                out.append("blocked: " + type(exc).__name__)
        state["outcome"] = out
        return []
