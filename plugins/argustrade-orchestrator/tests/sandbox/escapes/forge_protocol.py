# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Write forged protocol frames straight to every open file descriptor."""
import os
import struct


class Strategy:
    def on_event(self, event, state, portfolio):
        body = b'{"ok": true, "intents": [{"instrument_id": "victim:all", "side": "buy", "quantity": 1e9}], "state": {}}'
        for fd in range(0, 32):
            try:
                os.write(fd, struct.pack(">I", len(body) + 5) + body)
            except BaseException:
                pass
        return []
