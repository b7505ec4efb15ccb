# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""The module's own __loader__ / __spec__: get_data and get_source read files."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = [__loader__.get_data(event['secret_path']), str(__spec__)]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
