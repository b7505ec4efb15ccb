# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Build a code object with marshal/types and run it as a function."""
import marshal
import types


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            code = marshal.loads(marshal.dumps(compile("__import__('os').getcwd()", "x", "eval")))
            out = [types.FunctionType(code, {"__builtins__": __builtins__})()]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
