"""Executors for embarrassingly parallel lab work: sweep points, bootstrap batches, folds.

:class:`LocalExecutor` runs tasks on local processes (``concurrent.futures``);
:class:`DaskExecutor` sends them to an existing Dask cluster
(``dask.distributed.Client``) when ``[plugins.lab.executor] address`` names one.  Both
return results **in task order**, so a lab run gives identical answers on
either.  Tasks must be picklable top-level callables with picklable
arguments; every lab task is a pure function of its inputs (seeded), which is
what makes local and distributed results equal.
"""

from __future__ import annotations

import abc
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, TypeVar

import attrs

from argus_core import ArgusError, ConfigError

T = TypeVar("T")
Progress = Callable[[int, int], None]  # (done, total)
OnResult = Callable[[int, Any], None]  # (item index, result), in completion order


class Executor(abc.ABC):
    """Runs ``fn(item)`` for every item and returns the results in item order."""

    name: str = ""

    @abc.abstractmethod
    def map(self, fn: Callable[[Any], T], items: Sequence[Any], *,
            progress: Progress | None = None, on_result: OnResult | None = None) -> list[T]:
        """Results of ``fn`` over ``items``, ordered like ``items``.

        ``on_result(index, result)`` runs in the calling process as each item finishes
        (completion order) -- the hook a caller uses to checkpoint work as it lands, so
        an interrupted map loses only the items still running; ``progress(done, total)``
        follows it.
        """

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release workers or the cluster connection."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SerialExecutor(Executor):
    """In-process, one at a time (for unpicklable tasks such as injected strategies)."""

    name = "serial"

    def map(self, fn: Callable[[Any], T], items: Sequence[Any], *,
            progress: Progress | None = None, on_result: OnResult | None = None) -> list[T]:
        """Run in order in this process."""
        out = []
        for i, item in enumerate(items):
            out.append(fn(item))
            if on_result:
                on_result(i, out[-1])
            if progress:
                progress(i + 1, len(items))
        return out


class LocalExecutor(Executor):
    """A local process pool (default ``os.cpu_count()`` workers).

    Workers are *spawned*, not forked: numba's OpenMP/TBB thread pools (the
    bootstrap kernel) do not survive a fork, and spawning also means a worker
    sees exactly what a Dask worker would (importable functions only).
    """

    name = "local"

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = max_workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None

    def map(self, fn: Callable[[Any], T], items: Sequence[Any], *,
            progress: Progress | None = None, on_result: OnResult | None = None) -> list[T]:
        """Run on the pool; one worker or one item runs in-process (no pickling overhead)."""
        if self.max_workers == 1 or len(items) <= 1:
            return SerialExecutor().map(fn, items, progress=progress, on_result=on_result)
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.max_workers,
                                             mp_context=multiprocessing.get_context("spawn"))
        futures = {self._pool.submit(fn, item): i for i, item in enumerate(items)}
        results: list[Any] = [None] * len(items)
        for done, fut in enumerate(as_completed(futures), start=1):
            i = futures[fut]
            results[i] = fut.result()
            if on_result:
                on_result(i, results[i])
            if progress:
                progress(done, len(items))
        return results

    def close(self) -> None:
        """Shut the pool down."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class DaskExecutor(Executor):
    """Tasks on an existing ``dask.distributed`` cluster at ``address`` (or a given Client)."""

    name = "dask"

    def __init__(self, address: str | None = None, *, client: Any = None) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise ConfigError("[plugins.lab.executor] kind = 'dask' needs dask.distributed: "
                              "pip install 'argustrade-lab[dask]'") from None
        if client is None and not address:
            raise ConfigError("[plugins.lab.executor] kind = 'dask' needs an address "
                              "(e.g. 'tcp://127.0.0.1:8786')")
        self._own = client is None
        try:
            self.client = client if client is not None else Client(address, timeout="10s")
        except OSError as exc:
            raise ArgusError(f"cannot reach the Dask scheduler at {address}: {exc}; "
                             f"start one (dask scheduler / LocalCluster) or fix "
                             f"[plugins.lab.executor] address") from None

    def map(self, fn: Callable[[Any], T], items: Sequence[Any], *,
            progress: Progress | None = None, on_result: OnResult | None = None) -> list[T]:
        """Submit every item (``pure=False``: each call runs) and gather in order."""
        from distributed import as_completed as dask_as_completed

        futures = self.client.map(fn, list(items), pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[Any] = [None] * len(futures)
        for done, fut in enumerate(dask_as_completed(futures), start=1):
            i = index[fut.key]
            results[i] = fut.result()
            if on_result:
                on_result(i, results[i])
            if progress:
                progress(done, len(futures))
        return results

    def close(self) -> None:
        """Close the client if this executor opened it (the cluster keeps running)."""
        if self._own:
            self.client.close()


@attrs.frozen
class ExecutorSettings:
    """``[plugins.lab.executor]``: where lab tasks run."""

    kind: str = attrs.field(default="local",
                            validator=attrs.validators.in_(("local", "serial", "dask")))
    max_workers: int | None = None  # local: process count (default: CPU count)
    address: str | None = None  # dask: scheduler address, e.g. tcp://10.0.0.5:8786


def make_executor(settings: ExecutorSettings) -> Executor:
    """Build the executor the settings name."""
    if settings.kind == "dask":
        return DaskExecutor(settings.address)
    if settings.kind == "serial":
        return SerialExecutor()
    return LocalExecutor(settings.max_workers)
