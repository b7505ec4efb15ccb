# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""type.__subclasses__(type) -> ABCMeta.register.__builtins__['__import__']."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            meta = ().__class__.__class__.__subclasses__(().__class__.__class__)[0]
            out = [meta.register.__builtins__['__import__']('os').listdir('/')]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
