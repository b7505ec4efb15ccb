# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""license(): point the site _Printer at a secret file and have it print it."""


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            license._Printer__filenames = [event['secret_path']]
            out = [repr(license)]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
