"""Atomic output: the file has its old content or its new one, never half of it."""

from __future__ import annotations

import json
import os

import pytest

from tripletlab import atomic


def test_write_json_replaces_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "metrics.json"
    atomic.write_json(path, {"a": 1})
    atomic.write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_failure_keeps_old_content(tmp_path):
    path = tmp_path / "out.txt"
    atomic.write_text(path, "old")
    with pytest.raises(RuntimeError), atomic.atomic_open(path) as stream:
        stream.write("half")
        raise RuntimeError("interrupted")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_permissions_follow_umask(tmp_path):
    path = atomic.write_text(tmp_path / "report.html", "<html></html>")
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_temporary_name_keeps_the_suffix(tmp_path):
    with atomic.atomic_path(tmp_path / "model.keras") as temporary:
        assert temporary.name.endswith(".keras")
        temporary.write_text("x")
    assert (tmp_path / "model.keras").read_text() == "x"


def test_write_json_nan_as_null(tmp_path):
    import numpy as np

    data = {"a": float("nan"), "b": {"c": np.float32("inf"), "d": [1.5, -np.inf]},
            "e": np.float64(0.25), "f": np.int64(3), "g": None, "h": "x"}
    path = atomic.write_json(tmp_path / "m.json", data, nan_as_null=True)
    assert json.loads(path.read_text()) == {"a": None, "b": {"c": None, "d": [1.5, None]},
                                            "e": 0.25, "f": 3, "g": None, "h": "x"}
    assert "NaN" not in path.read_text() and "Infinity" not in path.read_text()
    # without it, Python's json spelling stays (checkpoint states keep their values as they were)
    assert "NaN" in atomic.write_json(tmp_path / "n.json", {"a": float("nan")}).read_text()


@pytest.mark.parametrize("writer", ["write_text", "write_json", "save_array", "atomic_open",
                                    "atomic_path"])
def test_record_is_called_before_anything_is_written(tmp_path, writer):
    import numpy as np

    target = tmp_path / "sub" / "out.npy"
    seen = []

    def record(path):
        # neither the file, nor its folder, nor a temporary exists yet
        seen.append((path, target.parent.exists()))

    if writer == "write_text":
        atomic.write_text(target, "x", record=record)
    elif writer == "write_json":
        atomic.write_json(target, {"a": 1}, record=record)
    elif writer == "save_array":
        atomic.save_array(target, np.zeros(2), record=record)
    elif writer == "atomic_open":
        with atomic.atomic_open(target, "w", record=record) as stream:
            stream.write("x")
    else:
        with atomic.atomic_path(target, record=record) as temporary:
            temporary.write_text("x")
    assert seen == [(target, False)]
    assert target.is_file()


def test_a_failing_record_stops_the_write(tmp_path):
    def refuse(path):
        raise RuntimeError(f"not {path.name}")

    with pytest.raises(RuntimeError, match="not out.txt"):
        atomic.write_text(tmp_path / "out.txt", "x", record=refuse)
    assert list(tmp_path.iterdir()) == []
