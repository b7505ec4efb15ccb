# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""help(): the site builtin's pager reads a file or spawns a shell ('!sh')."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = [str(help(event['secret_path']))]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
