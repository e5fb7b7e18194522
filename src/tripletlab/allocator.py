"""Keeping freed memory in the process, so that each training step reuses its large buffers.

glibc's ``malloc`` serves a block above its mmap threshold (128 KB, rising with use to at most
32 MB on 64-bit systems) by mapping fresh pages from the kernel, and returns them to the kernel
when the block is freed. A training step allocates large buffers and frees them again: XLA's
temporary arena holds every ``[B, B]`` buffer of a compiled step at once (more than 32 MB from
B = 1024 for a mining loss's value and gradient), eager PyTorch allocates each ``[B, B]`` result
anew (64 MB at B = 4096). So every step paid for faulting in every page of them again: on the
2-core machine of the README's benchmarks, JAX's batch-all at B = 1024 took 62 ms per value and
gradient this way and 10 ms with freed memory kept (``benchmarks/bench_losses.py
--retain-freed-memory``), most of the difference in page faults.

:func:`retain_freed_memory` asks glibc (``mallopt``) to serve every block from its heap
(``M_MMAP_MAX = 0``) and not to return the free top of the heap to the kernel
(``M_TRIM_THRESHOLD`` at its maximum), so freed buffers are reused. The cost: memory freed after
the process's peak stays with the process (it is reused by later allocations). It is the same as
starting Python with ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647`` in the environment.
``tripletlab train`` calls it on JAX and TensorFlow (``retain_freed_memory = "auto"``, see
:func:`retains_by_default`); a library user can call it once before training. It changes the
whole process, so importing tripletlab does not.

Example:
  >>> import tripletlab as tl
  >>> tl.allocator.retain_freed_memory()  # once, before training (Linux with glibc)
  True
"""

from __future__ import annotations

import ctypes
import platform

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_LARGEST_TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int

GLIBC_ENVIRONMENT = {"MALLOC_MMAP_MAX_": "0",
                     "MALLOC_TRIM_THRESHOLD_": str(_LARGEST_TRIM_THRESHOLD)}
"""The environment variables that give a new process the settings of
:func:`retain_freed_memory` from its start (glibc reads them when the process starts)."""


def allocator_is_glibc() -> bool:
    """Whether this process's C library is glibc (whose ``mallopt`` :func:`retain_freed_memory`
    uses)."""
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def retains_by_default(backend: str) -> bool:
    """Whether ``tripletlab train`` keeps freed memory by default on ``backend``: on JAX and
    TensorFlow, whose compiled steps allocate one arena per call (reused whole; at B = 16384 the
    losses' peak memory was unchanged), not on PyTorch, whose eager operations allocate many
    large blocks of different sizes that then fragment the kept heap (the autograd distance
    matrix at B = 16384 peaked at 18.5 GB above the start with it, 6.5 GB without) while its
    losses, after ten warm-up steps, ran about as fast either way.
    """
    return backend in ("jax", "tensorflow")


def retain_freed_memory() -> bool:
    """Makes glibc's ``malloc`` keep freed memory in the process for reuse (see the module).

    Process-wide and permanent for the process. Returns ``True`` when applied, ``False`` where the
    C library is not glibc (macOS, Windows, musl): there the allocator is left as it is.

    Raises:
      OSError: glibc refused a setting (``mallopt`` returned 0).
    """
    if not allocator_is_glibc():
        return False
    libc = ctypes.CDLL(None)  # the process's own C library
    for name, parameter, value in (("M_MMAP_MAX", _M_MMAP_MAX, 0),
                                   ("M_TRIM_THRESHOLD", _M_TRIM_THRESHOLD,
                                    _LARGEST_TRIM_THRESHOLD)):
        if libc.mallopt(ctypes.c_int(parameter), ctypes.c_int(value)) != 1:
            raise OSError(f"Expected glibc's mallopt to accept {name}={value}. Received: a "
                          "refusal (mallopt returned 0).")
    return True
