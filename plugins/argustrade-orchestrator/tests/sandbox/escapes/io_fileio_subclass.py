# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""_io.FileIO found under object.__subclasses__() opens files without open()."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            fio = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_IOBase'][0]
            raw = fio.__subclasses__()[0].__subclasses__()[0]
            out = [raw(event['secret_path']).read()]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
