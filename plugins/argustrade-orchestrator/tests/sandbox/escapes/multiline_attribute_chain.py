# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""The __subclasses__ walk spread over lines, each link on its own, after non-ASCII text:
the refusal must name the line and column where each dunder is written."""


class Strategy:
    def on_event(self, event, state, portfolio):
        label = "€ → ¥"
        try:
            walk = (event
                    .keys
                    .__class__
                    .__base__
                    .__subclasses__())
            out = [label, str([c for c in walk if "wrap_close" in str(c)][0]
                              .__init__.__globals__["environ"])]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
