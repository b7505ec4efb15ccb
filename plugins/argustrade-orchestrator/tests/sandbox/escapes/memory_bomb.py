# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Allocate far more memory than the limit."""
class Strategy:
    def on_event(self, event, state, portfolio):
        hog = []
        while True:
            hog.append(bytearray(64 * 1024 * 1024))
