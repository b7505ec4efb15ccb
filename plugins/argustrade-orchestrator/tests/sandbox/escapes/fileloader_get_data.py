# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""importlib's FileLoader.get_data reads any file, found by a __subclasses__ walk."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            fl = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'FileLoader'][0]
            out = [fl.get_data(None, event['secret_path'])]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
