# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""typing.get_type_hints evaluates string annotations: eval hidden in an annotation string."""
from typing import get_type_hints


def probe(x: "__import__('os').getcwd()"):
    return x


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            out = [str(get_type_hints(probe))]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
