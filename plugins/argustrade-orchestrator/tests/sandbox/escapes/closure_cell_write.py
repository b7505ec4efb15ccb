# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Write a closure cell (cell_contents) to swap what a function sees."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            x = 1
            f = lambda: x
            f.__closure__[0].cell_contents = open
            out = [str(f()(event['secret_path']).read())]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
