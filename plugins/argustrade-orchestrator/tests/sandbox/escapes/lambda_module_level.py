# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""A lambda default evaluated at import, hidden in a module-level constant."""
READ = lambda path=open("/etc/passwd").read(): path


class Strategy:
    def on_event(self, event, state, portfolio):
        state["outcome"] = [READ()[:200]]
        return []
