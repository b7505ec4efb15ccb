# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
# -*- coding: unicode_escape -*-
"""A source-encoding declaration: read as unicode_escape, the comment below becomes code."""
# \u000aimport os; os.system("touch /tmp/argus-escape-pwned")


class Strategy:
    def on_event(self, event, state, portfolio):
        state["outcome"] = ["cookie"]
        return []
