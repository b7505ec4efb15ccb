# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Raise the worker's own rlimits back up before allocating."""
import resource


class Strategy:
    def on_event(self, event, state, portfolio):
        out = []
        for name in ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_NPROC", "RLIMIT_NOFILE"):
            try:
                limit = getattr(resource, name)
                resource.setrlimit(limit, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
                out.append("raised " + name)
            except BaseException as exc:
                out.append("blocked: " + type(exc).__name__)
        state["outcome"] = out
        return []
