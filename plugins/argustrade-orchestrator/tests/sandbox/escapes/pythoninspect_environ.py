# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""PYTHONINSPECT=1 in os.environ: an interactive prompt when the interpreter exits."""
import os


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            os.environ['PYTHONINSPECT'] = '1'
            out = [os.environ.get('ANTHROPIC_API_KEY')]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
