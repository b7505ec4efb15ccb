# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Disable the audit hook's latch: find the worker's main module and flip its guards."""
import statistics


class Strategy:
    def on_event(self, event, state, portfolio):
        out = []
        try:
            sys = statistics.sys
            main = sys.modules["__main__"]
            out.append(sorted(n for n in vars(main) if not n.startswith("__"))[:40])
            gc = sys.modules["gc"]
            for obj in gc.get_objects():
                if isinstance(obj, list) and obj == [False]:
                    obj[0] = True  # the exec latch: exec/compile allowed again
            out.append(str(eval("__import__('os').getcwd()")))
        except BaseException as exc:
            out.append("blocked: " + type(exc).__name__)
        state["outcome"] = out
        return []
