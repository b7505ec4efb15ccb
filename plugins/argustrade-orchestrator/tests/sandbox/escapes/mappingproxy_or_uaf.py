# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""A class's mappingproxy and the | operator: the use-after-free from pyjail-tricks."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            proxy = ().__class__.__dict__
            out = [str(proxy | {})[:100]]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
