# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""NFKC-normalised attribute names: ().__ｃｌａｓｓ__ and ˢʸˢ-style lookalikes."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = [str(().__ｃｌａｓｓ__.__ｂａｓｅ__.__ｓｕｂｃｌａｓｓｅｓ__())[:200]]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
