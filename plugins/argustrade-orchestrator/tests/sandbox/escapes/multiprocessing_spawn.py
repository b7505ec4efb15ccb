# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""multiprocessing / concurrent.futures: start helper processes that outlive the worker."""
import multiprocessing


def work(path):
    open(path, "w").write("pwned")


class Strategy:
    def on_event(self, event, state, portfolio):
        try:
            p = multiprocessing.Process(target=work, args=(event["host_dir"] + "/pwned",))
            p.start()
            out = ["started %s" % p.pid]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        state["outcome"] = out
        return []
