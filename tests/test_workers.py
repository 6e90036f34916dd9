"""faceanon/workers.py: jobs on threads, results handed on in the order they were given."""
import threading
import time

import pytest

from faceanon.workers import InOrder, ordered_map


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_results_come_in_submission_order_whatever_finishes_first(workers):
    got = []

    def job(i):
        time.sleep(0.002 * ((7 * i) % 5))  # later jobs often finish first
        return i * i

    with InOrder(workers, 4, lambda result, tag: got.append((tag, result))) as pool:
        for i in range(20):
            pool.submit(job, i, tag=i)
        pool.finish()
    assert got == [(i, i * i) for i in range(20)]


def test_no_more_than_the_allowed_results_wait():
    release = threading.Event()
    started = []

    def job(i):
        started.append(i)
        release.wait(5)
        return i

    handed = []
    pool = InOrder(2, 2, lambda result, tag: handed.append(result))
    pool.submit(job, 0)
    pool.submit(job, 1)
    blocked = threading.Thread(target=pool.submit, args=(job, 2))
    blocked.start()
    blocked.join(0.2)
    assert blocked.is_alive() and handed == []  # the third waits for the first to finish
    release.set()
    blocked.join(5)
    pool.finish()
    pool.close()
    assert handed == [0, 1, 2]


def test_an_error_is_raised_where_its_result_would_have_been_handed_on():
    def job(i):
        if i == 3:
            raise ValueError("job 3 failed")
        return i

    handed = []
    with pytest.raises(ValueError, match="job 3 failed"):
        with InOrder(2, 1, lambda result, tag: handed.append(result)) as pool:
            for i in range(10):
                pool.submit(job, i)
            pool.finish()
    assert handed == [0, 1, 2]


def test_ordered_map_pairs_items_with_their_results_in_order():
    assert list(ordered_map(lambda x: -x, range(10), workers=2, waiting=3)) == [(i, -i) for i in range(10)]
    assert list(ordered_map(lambda x: x, [])) == []
