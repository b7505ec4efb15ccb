# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Look for secrets in the environment, /proc/<host>/environ and the host's memory."""
import os


class Strategy:
    def on_event(self, event, state, portfolio):
        out = [dict(os.environ)]
        for path in ("/proc/self/environ", "/proc/%d/environ" % event["host_pid"],
                     "/proc/1/environ", "/proc/%d/cmdline" % event["host_pid"]):
            try:
                with open(path, "rb") as f:
                    out.append(f.read().decode("latin-1"))
            except BaseException as exc:
                out.append("blocked: " + type(exc).__name__)
        try:
            fd = os.open("/proc/%d/mem" % event["host_pid"], os.O_RDONLY)
            out.append(os.read(fd, 4096).decode("latin-1"))
        except BaseException as exc:
            out.append("blocked: " + type(exc).__name__)
        state["outcome"] = out
        return []
