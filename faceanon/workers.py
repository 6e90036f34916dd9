"""Work on worker threads, handed on in the order it was given.

Video processing overlaps its stages on threads (OpenCV, onnxruntime, x264 and PyAV let go of the
GIL): detection runs a frame ahead of pass 1, filters process two frames at once, encoding runs
beside them. Each needs the same thing: run jobs on a few threads, keep only a few unfinished
(memory stays bounded on long videos), and hand the results on in submission order, errors
included, where they belong.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class InOrder:
    """Runs jobs on ``workers`` threads (0: at once, on the caller's thread) and hands each
    result, with the ``tag`` it was submitted with, to ``done(result, tag)`` in submission
    order. At most ``waiting`` results wait: :meth:`submit` blocks on the oldest beyond that.
    A job's exception is raised by the :meth:`submit` or :meth:`finish` that hands it on."""

    def __init__(self, workers: int, waiting: int, done: Callable[[Any, Any], None] = lambda result, tag: None,
                 name: str = "worker") -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) if workers > 0 else None
        self._waiting = max(0, waiting)
        self._done = done
        self._queue: deque[tuple[Future | Any, Any]] = deque()

    def submit(self, job: Callable[..., Any], *args, tag: Any = None) -> None:
        if self._pool is None:
            self._done(job(*args), tag)
            return
        self._queue.append((self._pool.submit(job, *args), tag))
        # hand on what is finished at the front, and the oldest while too many wait
        while self._queue and (len(self._queue) > self._waiting or self._queue[0][0].done()):
            self._hand_on()

    def finish(self) -> None:
        """Wait for every job and hand its result on."""
        while self._queue:
            self._hand_on()

    def _hand_on(self) -> None:
        future, tag = self._queue.popleft()
        self._done(future.result(), tag)

    def close(self) -> None:
        """Stop: jobs not started are dropped, running ones are waited for, results not handed
        on are lost (after an error)."""
        self._queue.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "InOrder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def ordered_map(job: Callable[[T], R], items: Iterable[T], workers: int = 1, waiting: int = 1,
                name: str = "worker") -> Iterator[tuple[T, R]]:
    """(item, job(item)) for each item, in order, the jobs running on ``workers`` threads up to
    ``waiting`` items ahead of the consumer."""
    ready: deque[tuple[T, R]] = deque()
    with InOrder(workers, waiting, lambda result, item: ready.append((item, result)), name=name) as pool:
        for item in items:
            pool.submit(job, item, tag=item)
            while ready:
                yield ready.popleft()
        pool.finish()
    while ready:
        yield ready.popleft()
