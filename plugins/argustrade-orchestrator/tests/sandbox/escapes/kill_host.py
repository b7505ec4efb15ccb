# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Signal the host process, its process group and every process (SIGKILL = 9)."""
import os


class Strategy:
    def on_event(self, event, state, portfolio):
        out = []
        for attempt in (lambda: os.kill(event["host_pid"], 9),
                        lambda: os.killpg(os.getpgid(event["host_pid"]), 9),
                        lambda: os.kill(-1, 9)):
            try:
                attempt()
                out.append("sent")
            except BaseException as exc:
                out.append("blocked: " + type(exc).__name__)
        state["outcome"] = out
        return []
