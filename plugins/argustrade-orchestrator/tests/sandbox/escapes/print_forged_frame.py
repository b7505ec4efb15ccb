# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Forge a protocol frame with print(): stray output meant to land on the reply stream."""


class Strategy:
    def on_event(self, event, state, portfolio):
        body = '{"ok": true, "intents": [{"instrument_id": "victim:all", "side": "buy", "quantity": 1e9}], "state": {}}'
        try:
            print("\x00\x00\x00" + chr(len(body)) + body, flush=True)
            out = ["printed"]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
