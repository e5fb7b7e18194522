"""Tests for tripletlab.visualization.plot: pixel sizes, non-blank pictures, frames."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from tripletlab.visualization import neighbor_grid, scatter_plot, training_curves, triplet_plot


def _pixels(path):
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _assert_not_blank(pixels, min_colors=3, min_ink=0.01):
    colors = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colors) >= min_colors, f"only {len(colors)} distinct colours"
    ink = np.mean(np.any(pixels < 240, axis=-1))
    assert ink > min_ink, f"only {ink:.2%} non-background pixels"


def _red_pixels(pixels):
    red = (pixels[..., 0] > 190) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    return int(red.sum())


def _images(num, size=12, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((num, size, size, channels)).astype(np.float32)


def test_scatter_plot_size_colours_and_legend(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 25)
    points = rng.normal(size=(100, 2)) + labels[:, None] * 3.0
    path = scatter_plot(points, labels, tmp_path / "scatter.png", title="four classes",
                        class_names=["zero", "one", "two", "three"])
    assert path == tmp_path / "scatter.png"
    pixels = _pixels(path)
    assert pixels.shape == (750, 900, 3)
    _assert_not_blank(pixels, min_colors=6, min_ink=0.005)
    for color in ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)):  # tab10
        close = np.all(np.abs(pixels.astype(int) - color) < 12, axis=-1)
        assert close.sum() > 20, f"class colour {color} missing"
    assert not list(tmp_path.glob(".*tmp*")), "temporary file left behind"


@pytest.mark.parametrize("class_names", [None, {k: f"c{k}" for k in range(40)}],
                         ids=["numbers", "mapping"])
def test_scatter_plot_many_classes(tmp_path, class_names):
    labels = np.arange(40).repeat(3)
    points = np.random.default_rng(1).normal(size=(120, 2))
    pixels = _pixels(scatter_plot(points, labels, tmp_path / "many.png", title="40",
                                  class_names=class_names))
    assert pixels.shape == (750, 900, 3)
    _assert_not_blank(pixels, min_colors=20, min_ink=0.002)


def test_scatter_plot_writes_svg(tmp_path):
    path = scatter_plot(np.eye(3)[:, :2], [0, 1, 1], tmp_path / "small.svg", title="svg")
    assert path.read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize(
    "points, labels, class_names, message",
    [(np.zeros((4, 3)), [0, 0, 1, 1], None, r"\[N, 2\]"),
     (np.zeros((4, 2)), [0, 1, 1], None, r"labels.*\[4\]"),
     (np.zeros((4, 2)), [0.5, 1, 1, 0], None, "integer"),
     (np.zeros((4, 2)), [0, 1, 2, 2], ["a", "b"], "no name for label 2")],
    ids=["points", "length", "float-labels", "names"])
def test_scatter_plot_refuses_bad_input(tmp_path, points, labels, class_names, message):
    with pytest.raises(ValueError, match=message):
        scatter_plot(points, labels, tmp_path / "x.png", title="bad", class_names=class_names)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("wrong", [True, False], ids=["with-mistakes", "all-right"])
def test_neighbor_grid_marks_wrong_neighbours_in_red(tmp_path, wrong):
    queries, k = 3, 4
    images = _images(queries * (k + 1)) * 0.5 + 0.25  # grey: no red in the images themselves
    query_labels = np.array([0, 1, 2])
    neighbor_labels = np.repeat(query_labels[:, None], k, axis=1)
    if wrong:
        neighbor_labels[0, 1] = 2
        neighbor_labels[2, 3] = 0
    neighbors = images[queries:].reshape(queries, k, 12, 12, 1)
    pixels = _pixels(neighbor_grid(images[:queries], query_labels, neighbors, neighbor_labels,
                                   tmp_path / "grid.png"))
    assert pixels.shape == (queries * 125 + 50, (k + 1) * 125, 3)
    _assert_not_blank(pixels, min_colors=50, min_ink=0.1)
    if wrong:
        assert _red_pixels(pixels) > 200
    else:
        assert _red_pixels(pixels) == 0


def test_neighbor_grid_rgb_and_uint8(tmp_path):
    queries = (_images(2, channels=3) * 255).astype(np.uint8)
    neighbors = (_images(6, channels=3, seed=1) * 255).astype(np.uint8).reshape(2, 3, 12, 12, 3)
    pixels = _pixels(neighbor_grid(queries, [0, 1], neighbors, [[0, 0, 1], [1, 1, 1]],
                                   tmp_path / "rgb.png", class_names=["cat", "dog"]))
    assert pixels.shape == (2 * 125 + 50, 4 * 125, 3)
    _assert_not_blank(pixels, min_colors=100)


def test_neighbor_grid_refuses_mismatched_shapes(tmp_path):
    with pytest.raises(ValueError, match="neighbor_labels"):
        neighbor_grid(_images(2), [0, 1], _images(6).reshape(2, 3, 12, 12, 1), [[0, 1]],
                      tmp_path / "bad.png")


def test_triplet_plot_rows(tmp_path):
    anchors, positives, negatives = _images(4), _images(4, seed=1), _images(4, seed=2)
    pixels = _pixels(triplet_plot(anchors, positives, negatives, tmp_path / "triplets.png"))
    assert pixels.shape == (4 * 125 + 50, 3 * 125, 3)
    _assert_not_blank(pixels, min_colors=50, min_ink=0.2)


@pytest.mark.parametrize("images, message",
                         [(np.full((2, 8, 8, 1), 255.0), r"\[0, 1\]"),
                          (np.zeros((2, 8, 8, 2)), "C = 1 or 3")], ids=["range", "channels"])
def test_images_are_checked(tmp_path, images, message):
    with pytest.raises(ValueError, match=message):
        triplet_plot(images, images, images, tmp_path / "bad.png")


def test_training_curves_from_csv_logger_file(tmp_path):
    rows = ["epoch,learning_rate,loss,note,precision_at_1,val_loss,val_precision_at_1"]
    for epoch in range(5):
        rows.append(f"{epoch},{1e-3 * 0.5 ** epoch},{1 / (epoch + 1)},text,{epoch / 5},"
                    f"{1.2 / (epoch + 1)},")  # an empty validation cell reads as NaN
    csv_path = tmp_path / "log.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    pixels = _pixels(training_curves(csv_path, tmp_path / "curves.png"))
    # three panels (loss, precision_at_1, learning_rate; `note` is not numeric): one row
    assert pixels.shape == (300, 1200, 3)
    _assert_not_blank(pixels, min_colors=10, min_ink=0.02)
    orange = np.all(np.abs(pixels.astype(int) - (255, 127, 14)) < 20, axis=-1)
    assert orange.sum() > 50, "validation curve missing"


def test_training_curves_from_a_real_csv_logger(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", loss="mse", metrics=["mae"])
    x = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    model.fit(x, x[:, :1], validation_split=0.25, epochs=2, batch_size=8, verbose=0,
              callbacks=[keras.callbacks.CSVLogger(str(tmp_path / "log.csv"))])
    pixels = _pixels(training_curves(tmp_path / "log.csv", tmp_path / "curves.png"))
    assert pixels.shape[1] in (800, 1200) and pixels.shape[0] == 300
    _assert_not_blank(pixels)


def test_training_curves_refuses_an_empty_log(tmp_path):
    (tmp_path / "log.csv").write_text("epoch,loss\n")
    with pytest.raises(ValueError, match="no data rows"):
        training_curves(tmp_path / "log.csv", tmp_path / "curves.png")


def test_no_pyplot_and_no_eager_optional_imports(tmp_path):
    """Importing needs only NumPy and Keras; plotting never touches pyplot's global state."""
    script = textwrap.dedent(f"""
        import sys
        optional = ("matplotlib", "sklearn", "PIL", "umap", "tensorboard")
        for name in optional:
            sys.modules[name] = None  # any import of them now fails
        import tripletlab.visualization as viz
        for name in optional:
            del sys.modules[name]
        sys.modules["matplotlib.pyplot"] = None
        import numpy as np
        viz.scatter_plot(np.eye(3)[:, :2], [0, 1, 1], {str(tmp_path / "a.png")!r}, title="t")
        viz.triplet_plot(np.ones((1, 4, 4, 1)), np.ones((1, 4, 4, 1)), np.zeros((1, 4, 4, 1)),
                         {str(tmp_path / "b.png")!r})
        print("OK")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-3000:]
