# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Never return."""
class Strategy:
    def on_event(self, event, state, portfolio):
        n = 0
        while True:
            n += 1
