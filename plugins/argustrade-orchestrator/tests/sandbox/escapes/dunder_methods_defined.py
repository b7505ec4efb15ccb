# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Defining dunders: __getattr__ at module level, __del__ and __eq__ run code in other contexts."""


def __getattr__(name):
    return open("/etc/passwd").read()


class Strategy:
    def __del__(self):
        open("/tmp/argus-escape-pwned", "w").write("finalizer ran")

    def __eq__(self, other):
        return open("/etc/passwd").read()

    def on_event(self, event, state, portfolio):
        state["outcome"] = ["dunders defined"]
        return []
