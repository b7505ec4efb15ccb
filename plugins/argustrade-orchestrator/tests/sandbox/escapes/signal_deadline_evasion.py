# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Ignore the deadline: install SIG_IGN for SIGALRM/SIGTERM/SIGXCPU, then spin."""
import signal


class Strategy:
    def on_event(self, event, state, portfolio):
        for sig in (signal.SIGALRM, signal.SIGTERM, signal.SIGXCPU):
            try:
                signal.signal(sig, signal.SIG_IGN)
            except BaseException:
                pass
        n = 0
        while n >= 0:
            n += 1
        return []
