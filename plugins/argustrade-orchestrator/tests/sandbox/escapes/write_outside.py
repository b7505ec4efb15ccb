# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Write and delete files outside the worker's directory."""
import os


class Strategy:
    def on_event(self, event, state, portfolio):
        out = []
        for path in (event["host_dir"] + "/pwned", "/tmp/argus-escape-pwned",
                     event["sentinel_path"]):
            try:
                with open(path, "w") as f:
                    f.write("pwned")
                out.append("wrote " + path)
            except BaseException as exc:
                out.append("blocked: " + type(exc).__name__)
        try:
            os.unlink(event["sentinel_path"])
            out.append("deleted")
        except BaseException as exc:
            out.append("blocked: " + type(exc).__name__)
        state["outcome"] = out
        return []
