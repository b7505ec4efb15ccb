# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Read a secret through pathlib (no open() in the source)."""
import pathlib


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = [pathlib.Path(event["secret_path"]).read_text(),
                   pathlib.Path("/proc/self/environ").read_bytes().decode("latin-1")]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
