# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""str.encode / bytes.decode with a codec name: the codec registry imports encodings modules."""


class Strategy:
    def on_event(self, event, state, portfolio):
        out = []
        for codec in ("unicode_escape", "rot_13", "idna", "punycode", "uu_codec"):
            try:
                out.append(repr("\\x41".encode("latin-1").decode(codec)))
            except BaseException as exc:
                out.append("blocked: " + type(exc).__name__)
        state["outcome"] = out
        return []
