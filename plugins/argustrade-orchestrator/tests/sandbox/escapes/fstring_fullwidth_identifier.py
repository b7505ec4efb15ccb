# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Fullwidth identifiers inside an f-string: one STRING token, so the token pre-check never sees them."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = [f"{ｅｖａｌ('__import__(chr(111) + chr(115)).environ')}",
                   f"{ｏｐｅｎ(event['secret_path']).ｒｅａｄ()}"]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
