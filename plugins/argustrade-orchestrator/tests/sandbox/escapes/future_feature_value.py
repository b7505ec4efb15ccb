# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""A __future__ import's name read as a value: a local 'annotations' elsewhere made it look bound."""
from __future__ import annotations


def shadow():
    annotations = 1
    return annotations


class Strategy:
    def on_event(self, event, state, portfolio):
        # __future__._Feature, an interpreter object outside the allow-list, read through
        # a name the checker counted as a local of another function.
        feature = annotations
        state["outcome"] = [repr(feature)]
        return []
