# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Fill the host's disk through the one host file the worker holds: 64 MiB written to its stderr."""
import os


class Strategy:
    def on_event(self, event, state, portfolio):
        chunk = b"a flood of words " * 61681  # about 1 MiB
        written = 0
        try:
            for _ in range(64):
                written += os.write(2, chunk)
        except OSError as exc:
            state["stopped"] = f"errno {exc.errno} after {written} bytes"
        state["written"] = written
        return []
