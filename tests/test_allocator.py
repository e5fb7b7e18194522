"""``tripletlab.allocator``: freed memory stays in the process, so a large buffer allocated
again reuses its pages instead of faulting in new ones; and ``tripletlab train`` asks for it as
configured (by default on JAX and TensorFlow).

The allocator setting is process-wide, so the page-fault checks run in fresh interpreters.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tripletlab.allocator import allocator_is_glibc

SOURCE = str(Path(__file__).resolve().parents[1] / "src")
PAGES = 64 * 2**20 // 4096  # a 64 MB block: above glibc's largest mmap threshold (32 MB)

# Three rounds of malloc, write every byte, free; prints the minor page faults of each round.
FAULTS_SCRIPT = textwrap.dedent("""
    import ctypes, resource, sys
    sys.path.insert(0, {source!r})
    if {retain!r}:
        from tripletlab.allocator import retain_freed_memory
        assert retain_freed_memory() is True
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    size = 64 * 2**20

    def faults_of_one_round():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        block = libc.malloc(size)
        ctypes.memset(block, 1, size)
        libc.free(block)
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    print(*[faults_of_one_round() for _ in range(3)])
""")

needs_glibc = pytest.mark.skipif(not allocator_is_glibc(), reason="glibc's mallopt only")


def _faults(retain: bool) -> list[int]:
    script = FAULTS_SCRIPT.format(source=SOURCE, retain=retain)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return [int(word) for word in result.stdout.split()]


def _transparent_huge_pages_always() -> bool:
    setting = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    return setting.is_file() and "[always]" in setting.read_text()


@needs_glibc
def test_a_freed_block_is_reused_without_page_faults():
    first, second, third = _faults(retain=True)
    assert first > PAGES // 2  # the heap grew once
    assert second < PAGES // 20 and third < PAGES // 20, (first, second, third)


@needs_glibc
@pytest.mark.skipif(_transparent_huge_pages_always(), reason="huge pages hide the faults")
def test_by_default_every_round_faults_its_pages_in_again():
    # What retain_freed_memory changes: without it, the check above fails.
    assert all(faults > PAGES // 2 for faults in _faults(retain=False))


@needs_glibc
def test_the_environment_form_gives_a_new_process_the_same_reuse():
    import os

    from tripletlab.allocator import GLIBC_ENVIRONMENT

    script = FAULTS_SCRIPT.format(source=SOURCE, retain=False)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, check=False, env={**os.environ, **GLIBC_ENVIRONMENT})
    assert result.returncode == 0, result.stderr
    first, second, third = (int(word) for word in result.stdout.split())
    assert second < PAGES // 20 and third < PAGES // 20, (first, second, third)


def test_not_applied_outside_glibc(monkeypatch):
    import tripletlab.allocator as allocator

    monkeypatch.setattr(allocator, "allocator_is_glibc", lambda: False)
    assert allocator.retain_freed_memory() is False


def test_reachable_from_the_package():
    import tripletlab as tl

    assert tl.allocator.retain_freed_memory.__module__ == "tripletlab.allocator"


def test_kept_by_default_on_the_compiled_backends_only():
    from tripletlab.allocator import retains_by_default

    assert retains_by_default("jax") and retains_by_default("tensorflow")
    assert not retains_by_default("torch")


@pytest.mark.parametrize(("flags", "applied", "expected_calls"), [
    ([], True, None),  # auto: by the backend
    (["--retain-freed-memory", "true"], True, 1),
    (["--retain-freed-memory", "false"], True, 0),
    (["--retain-freed-memory", "true"], False, 1),
])
def test_train_retains_freed_memory_as_configured(monkeypatch, tmp_path, capsys, flags, applied,
                                                  expected_calls):
    import keras

    import tripletlab.allocator as allocator
    import tripletlab.train.run as run
    from tripletlab.cli.main import main

    if expected_calls is None:
        expected_calls = int(keras.backend.backend() in ("jax", "tensorflow"))
    calls, configs = [], []

    def retain():
        calls.append(True)
        return applied

    monkeypatch.setattr(allocator, "retain_freed_memory", retain)
    monkeypatch.setattr(run, "train", lambda config, *args, **kwargs: configs.append(config))
    status = main(["train", "--model-dir", str(tmp_path / "run"), "--dataset", "digits",
                   "--verbose", "0", "--backend", keras.backend.backend(), *flags])
    assert status == 0
    assert len(calls) == expected_calls
    assert configs[0].retain_freed_memory == {(): "auto", ("true",): True,
                                              ("false",): False}[tuple(flags[1:])]
    note = "retain_freed_memory needs glibc's malloc"
    assert (note in capsys.readouterr().err) is (expected_calls == 1 and not applied)


def test_a_wrong_value_is_refused_with_its_name(tmp_path, capsys):
    from tripletlab.cli.main import main

    status = main(["train", "--model-dir", str(tmp_path / "run"), "--retain-freed-memory",
                   "sometimes"])
    assert status == 2
    error = capsys.readouterr().err
    assert "--retain-freed-memory" in error and "'sometimes'" in error
    assert not (tmp_path / "run").exists()
