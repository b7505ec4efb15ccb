# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""A with block's __enter__/__exit__ hooks, and open() as a context manager."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            with open(event["secret_path"]) as f:
                out = [f.read()]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
