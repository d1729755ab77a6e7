"""``rasteret.read.window_buffers``: buffers given back are reused (the smallest that
fits), shapes and dtypes are the caller's, foreign arrays are never taken in."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from rasteret.read.window_buffers import GRANULE, SMALL_GRANULE, WindowBuffers


def test_a_buffer_given_back_is_reused_by_the_next_window_it_fits() -> None:
    pool = WindowBuffers()
    first = pool.take((1500, 1400), np.dtype("uint16"))
    assert first.shape == (1500, 1400) and first.dtype == np.uint16 and first.flags.writeable
    first[...] = 7
    pool.give(first)
    second = pool.take((1490, 1410), np.dtype("uint16"))  # a slightly different window
    assert np.shares_memory(first, second)
    assert pool.allocated == -(-first.nbytes // GRANULE) * GRANULE  # one buffer only
    third = pool.take((100, 100), np.dtype("float32"))  # nothing free: a new buffer
    assert not np.shares_memory(second, third)


def test_the_smallest_free_buffer_that_fits_is_taken() -> None:
    pool = WindowBuffers()
    big = pool.take((3000, 3000), np.dtype("uint16"))
    small = pool.take((1000, 1000), np.dtype("uint16"))
    pool.give(big[None])  # a view of it gives the buffer back too
    pool.give(small)
    again = pool.take((900, 900), np.dtype("uint16"))
    assert np.shares_memory(again, small) and not np.shares_memory(again, big)


def test_foreign_and_repeated_arrays_are_ignored() -> None:
    pool = WindowBuffers()
    pool.give(np.zeros((2000, 2000), np.uint16))  # not from this pool
    window = pool.take((10, 10), np.dtype("uint8"))
    pool.give(window)
    pool.give(window)  # twice: still one free buffer
    a = pool.take((10, 10), np.dtype("uint8"))
    b = pool.take((10, 10), np.dtype("uint8"))
    assert np.shares_memory(a, window) and not np.shares_memory(a, b)


def test_threads_never_share_a_buffer() -> None:
    pool = WindowBuffers()

    def one(i: int) -> bool:
        window = pool.take((256, 256), np.dtype("uint16"))
        window[...] = i
        ok = bool((window == i).all())
        pool.give(window)
        return ok

    with ThreadPoolExecutor(4) as threads:
        assert all(threads.map(one, range(400)))
    assert pool.allocated <= 4 * 2 * SMALL_GRANULE  # one 128 KiB buffer per thread at most
