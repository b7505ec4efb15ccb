# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""The plain dynamic-code builtins: eval, exec, compile."""


class Strategy:
    def on_event(self, event, state, portfolio):
        out = []
        for attempt in (lambda: eval("__import__('os').getcwd()"),
                        lambda: exec("import os; os.system('touch %s/pwned')" % event["host_dir"]),
                        lambda: compile("1", "<x>", "eval")):
            try:
                out.append(str(attempt()))
            except BaseException as exc:
                out.append("blocked: " + type(exc).__name__)
        state["outcome"] = out
        return []
