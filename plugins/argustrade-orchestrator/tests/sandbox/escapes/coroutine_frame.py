# ruff: noqa  -- deliberately hostile sample code for the sandbox tests
"""Coroutines and async generators expose cr_frame / ag_frame like generators."""


async def coro():
    return 1


async def agen():
    yield 1


class Strategy:
    def on_event(self, event, state, portfolio):
        c = coro()
        try:
            out = [sorted(c.cr_frame.f_globals)[:20], str(agen().ag_frame)]
        except BaseException as exc:
            out = ["blocked: " + type(exc).__name__]
        finally:
            c.close()
        state["outcome"] = [str(o)[:200] for o in out]
        return []
