# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Stop itself with SIGSTOP mid-call: a stopped worker the host must still time out, kill and reap."""
import os
import signal


class Strategy:
    def on_event(self, event, state, portfolio):
        for sig in (signal.SIGTSTP, signal.SIGTTIN, signal.SIGSTOP):
            try:
                os.kill(os.getpid(), sig)
            except OSError:
                pass
        return []
