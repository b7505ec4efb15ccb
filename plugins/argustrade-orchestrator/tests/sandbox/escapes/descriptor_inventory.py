# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Descriptors the worker was handed by mistake: fstat 0..1023 and read, write or seek each one found open."""
import os
import stat


class Strategy:
    def on_event(self, event, state, portfolio):
        found = []
        for fd in range(1024):
            try:
                st = os.fstat(fd)
            except OSError:
                continue
            kind = ("pipe" if stat.S_ISFIFO(st.st_mode) else "socket" if stat.S_ISSOCK(st.st_mode)
                    else "file" if stat.S_ISREG(st.st_mode) else "other")
            entry = {"fd": fd, "kind": kind, "size": st.st_size}
            if kind == "file":
                try:
                    entry["read"] = os.pread(fd, 200, 0).decode("latin-1")
                except OSError as exc:
                    entry["read"] = f"blocked: errno {exc.errno}"
            found.append(entry)
        state["outcome"] = found
        return []
