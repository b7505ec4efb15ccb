# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Unicode identifiers are NFKC-normalised by the parser: a fullwidth 'ｅｖａｌ' is eval."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = [str(ｅｖａｌ("__import__('os').getcwd()")),
                   str(ｏｐｅｎ(event["secret_path"]).read())]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
