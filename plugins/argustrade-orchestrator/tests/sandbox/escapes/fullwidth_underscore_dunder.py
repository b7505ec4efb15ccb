# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Fullwidth low lines (U+FF3F) that NFKC turns into a dunder attribute."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = [str(()._＿class＿_._＿base＿_._＿subclasses＿_())[:100]]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
