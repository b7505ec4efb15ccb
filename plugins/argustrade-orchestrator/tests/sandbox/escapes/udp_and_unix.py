# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Send a UDP datagram to the host and connect to a host Unix socket (path and abstract)."""
import socket


class Strategy:
    def on_event(self, event, state, portfolio):
        out = []
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.sendto(b"exfiltrate", ("127.0.0.1", event["udp_port"]))
            out.append("sent")
        except BaseException as exc:
            out.append("blocked: " + type(exc).__name__)
        for address in (event["unix_path"], "\0" + event["abstract_name"]):
            try:
                u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                u.connect(address)
                u.sendall(b"exfiltrate")
                out.append("connected")
            except BaseException as exc:
                out.append("blocked: " + type(exc).__name__)
        state["outcome"] = out
        return []
