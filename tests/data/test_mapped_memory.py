"""Batches in their own memory map: zero-filled, writable, and given back to the system when
freed; large ones start on a huge-page boundary."""

from __future__ import annotations

import gc
import mmap
import sys

import numpy as np
import pytest

from tripletlab.data.mapped_memory import (
    HUGE_PAGE,
    HUGE_PAGE_MIN_BYTES,
    MAPPED_MIN_BYTES,
    mapped_zeros,
)

SHAPES = {
    "small (NumPy's allocator)": ((4, 8, 8, 3), np.float32),
    "mapped, under the huge-page size": ((2, 128, 128, 3), np.float32),
    "mapped, huge pages": ((64, 224, 224, 3), np.float32),
    "odd size, uint8": ((7, 333, 511, 3), np.uint8),
}


@pytest.mark.parametrize("name", SHAPES)
def test_zero_filled_writable_of_the_asked_shape_and_dtype(name):
    shape, dtype = SHAPES[name]
    array = mapped_zeros(shape, dtype)
    assert array.shape == shape and array.dtype == np.dtype(dtype)
    assert array.flags.writeable and array.flags.c_contiguous
    assert not array.any()
    array[-1, -1, -1, -1] = 3
    array[0] = 1
    assert array[-1, -1, -1, -1] == 3 and array[0].all() and not array[1:-1].any()


def test_large_maps_start_on_a_huge_page_boundary():
    if not hasattr(mmap, "MADV_HUGEPAGE"):
        pytest.skip("no MADV_HUGEPAGE on this platform")
    shape = (64, 224, 224, 3)
    assert 64 * 224 * 224 * 3 * 4 >= HUGE_PAGE_MIN_BYTES
    for _ in range(3):
        assert mapped_zeros(shape).ctypes.data % HUGE_PAGE == 0
    # under the thresholds: no alignment asked (and NumPy's allocator below MAPPED_MIN_BYTES)
    assert MAPPED_MIN_BYTES < HUGE_PAGE_MIN_BYTES


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * mmap.PAGESIZE


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_freed_batches_give_their_memory_back_and_views_keep_it():
    gc.collect()
    before = resident_bytes()
    batch = mapped_zeros((64, 224, 224, 3))  # 38.5 MB
    batch[...] = 1.0
    touched = resident_bytes()
    assert touched - before > 30e6
    view = batch[10:20]
    del batch
    gc.collect()
    assert resident_bytes() - before > 30e6  # the view still holds the map
    assert float(view.sum()) == view.size
    del view
    gc.collect()
    assert resident_bytes() - before < 8e6
