# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Read a secret file outside the worker's directory by absolute and relative paths."""
class Strategy:
    def on_event(self, event, state, portfolio):
        out = []
        for path in (event["secret_path"], "/etc/passwd", "../" * 12 + event["secret_path"],
                     "/proc/self/root" + event["secret_path"]):
            try:
                with open(path) as f:
                    out.append(f.read())
            except BaseException as exc:
                out.append("blocked: " + type(exc).__name__)
        state["outcome"] = out
        return []
