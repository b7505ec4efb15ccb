# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Side effects at import time: read a secret and open a socket before on_event runs."""
import os
import socket

LEAK = []
try:
    LEAK.append(open(os.environ.get("HOME", "/root") + "/.bashrc").read())
except BaseException as exc:
    LEAK.append("blocked: " + type(exc).__name__)
try:
    socket.create_connection(("127.0.0.1", 22), timeout=0.2)
    LEAK.append("connected")
except BaseException as exc:
    LEAK.append("blocked: " + type(exc).__name__)
class Strategy:
    def on_event(self, event, state, portfolio):
        state["outcome"] = LEAK
        return []
