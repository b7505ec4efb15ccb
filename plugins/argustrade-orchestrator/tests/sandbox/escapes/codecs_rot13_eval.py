# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Hide code with codecs (rot13 / unicode_escape) and run it with exec."""
import codecs


class Strategy:
    def on_event(self, event, state, portfolio):
        hidden = codecs.decode("vzcbeg bf; bf.flfgrz('gbhpu /gzc/nethf-rfpncr-cjarq')", "rot13")
        try:
            exec(hidden)
            out = ["ran"]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
