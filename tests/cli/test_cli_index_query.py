"""``tripletlab index``, ``query`` and ``calibrate`` as docs/retrieval.md shows them: a model's
gallery, the neighbours of the evaluation's exact search, a stored threshold that ``query``
uses, ``--append`` without re-embedding (and whole after a kill), and strict errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest

from conftest import small_cnn_file, wait_for
from tripletlab.cli.main import main
from tripletlab.data import load_dataset
from tripletlab.evaluation.knn import nearest_neighbors
from tripletlab.models import build_model
from tripletlab.retrieval import Index

pytest.importorskip("faiss")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return small_cnn_file(tmp_path_factory)


@pytest.fixture(scope="module")
def digits_index(model_file, tmp_path_factory):
    """An index of the digits' train split, calibrated on the test split."""
    folder = tmp_path_factory.mktemp("gallery") / "index"
    assert main(["index", "--model", str(model_file), "--dataset", "digits",
                 "--output", str(folder)]) == 0
    embeddings = tmp_path_factory.mktemp("emb")
    assert main(["embed", "--model", str(model_file), "--dataset", "digits", "--split", "train",
                 "--output", str(embeddings)]) == 0
    return folder, embeddings


def query_json(argv, capsys):
    capsys.readouterr()
    assert main(["query", *argv, "--json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()
            if line.startswith("{")]


def test_query_returns_the_evaluation_neighbours(digits_index, model_file, tmp_path, capsys):
    folder, gallery = digits_index
    queries = tmp_path / "queries"
    assert main(["embed", "--model", str(model_file), "--dataset", "digits", "--output",
                 str(queries)]) == 0
    records = query_json(["--index", str(folder), "--dataset", "digits", "-k", "4"], capsys)
    exact = nearest_neighbors(np.load(queries / "embeddings.npy"),
                              np.load(gallery / "embeddings.npy"), 4)
    assert [[n["item"] for n in r["neighbors"]] for r in records] == exact.indices.tolist()
    np.testing.assert_allclose([[n["distance"] for n in r["neighbors"]] for r in records],
                               exact.distances, rtol=1e-5, atol=1e-6)
    data = load_dataset("digits")
    assert [r["label"] for r in records] == [str(v) for v in data.y_test]
    assert records[0]["neighbors"][0]["name"].startswith("digits/train/")
    assert "match" not in records[0]  # no threshold yet


def test_calibrate_stores_the_threshold_that_query_uses(digits_index, tmp_path, capsys):
    folder, _ = digits_index
    assert main(["calibrate", "--index", str(folder), "--dataset", "digits"]) == 0
    out = capsys.readouterr().out
    assert "threshold" in out and "by f1" in out
    saved = json.loads((folder / "calibration.json").read_text())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["calibration"]["threshold"] == saved["threshold"]
    assert manifest["extra_files"] == {"calibration": "calibration.json",
                                       "calibration_picture": "calibration.png"}
    assert (folder / "calibration.png").stat().st_size > 10_000
    records = query_json(["--index", str(folder), "--dataset", "digits"], capsys)
    for record in records:
        nearest = record["neighbors"][0]
        assert record["threshold"] == saved["threshold"]
        assert record["match"] == (nearest["label"] if nearest["distance"] <= saved["threshold"]
                                   else None)
    assert {r["match"] is None for r in records} == {True, False}
    unthresholded = query_json(["--index", str(folder), "--dataset", "digits",
                                "--no-threshold"], capsys)
    assert "match" not in unthresholded[0]
    everything = query_json(["--index", str(folder), "--dataset", "digits", "--threshold",
                             "1e9"], capsys)
    assert all(r["match"] is not None for r in everything)


def test_query_table_and_picture(digits_index, tmp_path, capsys):
    folder, _ = digits_index
    picture = tmp_path / "neighbours.png"
    assert main(["query", "--index", str(folder), "--dataset", "digits", "-k", "3",
                 "--max-rows", "4", "--picture", str(picture)]) == 0
    out = capsys.readouterr().out
    assert "neighbours: label (distance)" in out and "digits/test/3" in out
    assert "more queries" in out and "360 queries: nearest item of the query's label" in out
    from PIL import Image

    with Image.open(picture) as image:
        assert image.size == (4 * 125, 8 * 125 + 50)  # 8 queries, each beside 3 neighbours


def test_query_loose_image_files(digits_index, tmp_path, capsys):
    """``--images``: unlabelled image files (or a folder of them), resized as the gallery's."""
    from PIL import Image

    folder, _ = digits_index
    photos = tmp_path / "photos"
    photos.mkdir()
    data = load_dataset("digits")
    for row in range(3):
        pixels = (data.x_test[row, ..., 0] * 255).round().astype("uint8")
        Image.fromarray(pixels).resize((32, 32)).save(photos / f"photo{row}.png")
    (photos / "notes.txt").write_text("not an image")
    records = query_json(["--index", str(folder), "--images", str(photos), "-k", "2"], capsys)
    assert [r["query"] for r in records] == [str(photos / f"photo{row}.png") for row in range(3)]
    assert all("label" not in r and len(r["neighbors"]) == 2 for r in records)
    picture = tmp_path / "loose.png"
    assert main(["query", "--index", str(folder), "--images", str(photos / "photo0.png"), "-k",
                 "2", "--picture", str(picture)]) == 0
    assert picture.stat().st_size > 1000


def test_report_shows_an_index_inside_the_experiment(digits_index, tmp_path):
    import shutil

    folder, _ = digits_index
    experiment = tmp_path / "run"
    experiment.mkdir()
    (experiment / "config.json").write_text(json.dumps({"loss": "semi-hard"}))
    shutil.copytree(folder, experiment / "gallery")
    assert main(["report", "--experiment", str(experiment)]) == 0
    page = (experiment / "report.html").read_text()
    assert "Search index" in page and "gallery/" in page and "calibration curve" in page


def test_append_adds_items_without_re_embedding(model_file, tmp_path):
    folder = tmp_path / "index"
    assert main(["index", "--model", str(model_file), "--dataset", "digits", "--split",
                 "test", "--output", str(folder)]) == 0
    before = Index.load(folder)
    assert main(["index", "--append", "--dataset", "digits", "--split", "train",
                 "--output", str(folder)]) == 0  # the index's own model
    after = Index.load(folder)
    assert len(after) == 360 + 1437
    np.testing.assert_array_equal(after.faiss_index.reconstruct_n(0, 360),
                                  before.faiss_index.reconstruct_n(0, 360))
    assert after.names[360] == "digits/train/0"
    assert [s["first_item"] for s in after.metadata["sources"]] == [0, 360]
    assert sorted(p.name for p in folder.iterdir()) == [
        "index-000002.faiss", "labels-000002.npy", "manifest.json", "model-000001.keras",
        "names-000002.npy"]


def test_a_killed_append_leaves_the_previous_index_whole(tmp_path):
    """kill -9 after the new data files are written, before the manifest is replaced: the
    previous index loads, and the next save removes the orphans."""
    rng = np.random.default_rng(0)
    np.save(tmp_path / "e.npy", rng.normal(size=(500, 8)).astype("float32"))
    np.save(tmp_path / "l.npy", rng.integers(0, 5, 500))
    folder = tmp_path / "index"
    assert main(["index", "--embeddings", str(tmp_path / "e.npy"), "--labels",
                 str(tmp_path / "l.npy"), "--output", str(folder)]) == 0
    marker = tmp_path / "names-written"
    script = (
        "import sys, time, pathlib\n"
        "import tripletlab.retrieval.index_folder as folder\n"
        "write = folder.save_array\n"
        "def stalled(path, array, **kwargs):\n"
        "    write(path, array, **kwargs)\n"
        "    if path.name.startswith('names-'):\n"
        f"        pathlib.Path({str(marker)!r}).write_text('x')\n"
        "        time.sleep(600)\n"
        "folder.save_array = stalled\n"
        "from tripletlab.cli.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n")
    argv = ["index", "--append", "--embeddings", str(tmp_path / "e.npy"), "--labels",
            str(tmp_path / "l.npy"), "--output", str(folder)]
    process = subprocess.Popen([sys.executable, "-c", script, *argv], stderr=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, text=True)
    try:
        assert wait_for(process, marker.is_file), process.stderr.read()[-2000:]
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert (folder / "names-000002.npy").is_file()  # written, never made current
    assert len(Index.load(folder)) == 500
    assert main(argv) == 0
    assert len(Index.load(folder)) == 1000
    assert sorted(p.name for p in folder.iterdir()) == [
        "index-000002.faiss", "labels-000002.npy", "manifest.json", "names-000002.npy"]


def test_hnsw_index_reports_its_recall(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "e.npy", rng.normal(size=(2000, 8)).astype("float32"))
    np.save(tmp_path / "l.npy", rng.integers(0, 5, 2000))
    assert main(["index", "--embeddings", str(tmp_path / "e.npy"), "--labels",
                 str(tmp_path / "l.npy"), "--index", "hnsw", "--output",
                 str(tmp_path / "index")]) == 0
    assert "recall@10 against exact search" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "index" / "manifest.json").read_text())
    assert manifest["settings"]["kind"] == "hnsw" and manifest["recall"]["recall"] > 0.9


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["index", "--dataset", "digits", "--embeddings", "e.npy", "--labels", "l.npy",
          "--output", "o"], "one source of items"),
        (["index", "--embeddings", "e.npy", "--output", "o"], "--labels"),
        (["index", "--dataset", "digits", "--output", "o"], "a model to embed"),
        (["query", "--index", "missing", "--embeddings", "e.npy"], "does not exist"),
        (["query", "--index", "INDEX", "--dataset", "digits"], "built from saved embeddings"),
        (["query", "--index", "INDEX", "--embeddings", "wide.npy"], "dimension 8"),
        (["query", "--index", "INDEX", "--embeddings", "e.npy", "--picture", "p.png"],
         "with images"),
        (["calibrate", "--index", "INDEX", "--embeddings", "e.npy"], "--labels"),
        (["calibrate", "--index", "INDEX", "--embeddings", "e.npy", "--labels", "l.npy",
          "--target-precision", "1.5"], "(0, 1]"),
        (["index", "--embeddings", "e.npy", "--labels", "l.npy", "--output", "INDEX"],
         "--append"),
        (["index", "--embeddings", "e.npy", "--labels", "l.npy", "--output", "INDEX",
          "--append", "--distance", "angular"], "the distance of the index"),
        (["index", "--embeddings", "e.npy", "--labels", "l.npy", "--output", "OTHER"],
         "did not write"),
    ],
    ids=["two-sources", "no-labels", "no-model", "missing-index", "no-model-in-index",
         "dimension", "picture-without-images", "calibrate-no-labels", "bad-target",
         "existing-index", "other-distance", "foreign-folder"],
)
def test_bad_input_is_one_line(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    np.save("e.npy", rng.normal(size=(50, 8)).astype("float32"))
    np.save("wide.npy", rng.normal(size=(5, 9)).astype("float32"))
    np.save("l.npy", rng.integers(0, 3, 50))
    Index.build(np.load("e.npy"), np.load("l.npy")).save("INDEX")
    (tmp_path / "OTHER").mkdir()
    (tmp_path / "OTHER" / "notes.txt").write_text("mine")
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before  # nothing written


def test_image_folder_gallery_and_queries_of_another_size(tmp_path, capsys):
    """A gallery of image files (names are their paths, the picture reads them again) and
    queries from files of another size, resized as the gallery's images were."""
    from PIL import Image
    from test_cli_image_folder import write_split_folder

    root = write_split_folder(tmp_path / "colours")
    model_file = tmp_path / "rgb.keras"
    keras.utils.set_random_seed(0)
    build_model("small-cnn", (16, 16, 3), 8, widths=(8,)).save(model_file)
    folder = tmp_path / "index"
    assert main(["index", "--model", str(model_file), "--image-folder", str(root),
                 "--output", str(folder)]) == 0
    index = Index.load(folder)
    assert len(index) == 24 and index.names[0] == str(root / "train" / "blue" / "0.jpg")
    assert set(index.labels.tolist()) == {"blue", "green", "red", "yellow"}
    big = tmp_path / "big"
    big.mkdir()
    for path in sorted((root / "test" / "red").iterdir()):
        with Image.open(path) as image:
            image.resize((64, 64)).save(big / path.name)
    capsys.readouterr()
    assert main(["query", "--index", str(folder), "--images", str(big), "-k", "3", "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()
               if line.startswith("{")]
    assert len(records) == 3 and all(len(r["neighbors"]) == 3 for r in records)
    picture = tmp_path / "q.png"
    assert main(["query", "--index", str(folder), "--image-folder", str(root), "-k", "3",
                 "--picture", str(picture)]) == 0
    assert "12 queries" in capsys.readouterr().out and picture.stat().st_size > 1000
