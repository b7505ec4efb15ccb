# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""BuiltinImporter.load_module('posix') found by a __subclasses__ walk."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            imp = [c for c in ().__class__.__mro__[1].__subclasses__() if c.__name__ == 'BuiltinImporter'][0]
            out = [imp.load_module('posix').listdir('/')]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
