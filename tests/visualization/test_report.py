"""Tests for tripletlab.visualization.write_report, including a headless Chromium load."""

import html.parser
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from tripletlab.visualization import report, write_report

NUM_POINTS = 60
NUM_CLASSES = 3


@pytest.fixture(autouse=True)
def _one_thread():
    # t-SNE's OpenMP threads spin-wait: on a shared two-core machine one thread is ~10x faster.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def _make_experiment(folder, *, images=True, parts=("config", "metrics", "log", "embeddings",
                                                     "plots")):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    if "config" in parts:
        (folder / "config.json").write_text(json.dumps(
            {"model": {"name": "small_cnn", "embedding_dim": 8}, "loss": "semi-hard",
             "margin": 0.5, "tags": ["demo", "<b>not bold</b>"]}))
    if "metrics" in parts:
        (folder / "metrics.json").write_text(json.dumps(
            {"precision_at_1": 0.912345678, "map_at_r": 0.5, "num_queries": NUM_POINTS}))
    if "log" in parts:
        (folder / "log.csv").write_text(
            "epoch,loss,val_loss\n" + "".join(f"{e},{1 / (e + 1)},{1.1 / (e + 1)}\n"
                                             for e in range(4)))
    if "embeddings" in parts:
        labels = np.repeat(np.arange(NUM_CLASSES), NUM_POINTS // NUM_CLASSES)
        centres = rng.normal(scale=4.0, size=(NUM_CLASSES, 8))
        embeddings = centres[labels] + rng.normal(size=(NUM_POINTS, 8))
        (folder / "embeddings").mkdir(exist_ok=True)
        np.save(folder / "embeddings" / "test_embeddings.npy", embeddings.astype(np.float32))
        np.save(folder / "embeddings" / "test_labels.npy", labels)
        if images:
            pictures = rng.integers(0, 256, size=(NUM_POINTS, 8, 8, 1), dtype=np.uint8)
            np.save(folder / "embeddings" / "test_images.npy", pictures)
    if "plots" in parts:
        (folder / "plots" / "live").mkdir(parents=True, exist_ok=True)
        picture = Image.fromarray(rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8))
        picture.save(folder / "plots" / "neighbors.png")
        picture.save(folder / "plots" / "live" / "frame_0000.png")
        picture.save(folder / "plots" / "live" / "animation.gif")
        picture.save(folder / "plots" / "training_curves.png")
    return folder


class _Counter(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.points = []
        self.attributes = {}

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "data-point" in attributes:
            self.points.append((tag, attributes["data-point"], attributes.get("data-label")))
        if tag == "html":
            self.attributes.update(attributes)
        if "id" in attributes:
            self.attributes[f"#{attributes['id']}"] = attributes


def _parse(text):
    counter = _Counter()
    counter.feed(text)
    return counter


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    folder = _make_experiment(tmp_path_factory.mktemp("experiment") / "run-1")
    path = write_report(folder)
    return folder, path, path.read_text(encoding="utf-8")


def test_report_has_every_part(full_report):
    folder, path, page = full_report
    assert path == folder / "report.html"
    for text in ("precision_at_1", "0.9123", "model.embedding_dim", "small_cnn",
                 "Training curves", "PCA", "t-SNE", "plots/neighbors.png",
                 "plots/live/animation.gif", "Showing all 60 points"):
        assert text in page, text
    assert "&lt;b&gt;not bold&lt;/b&gt;" in page and "<b>not bold</b>" not in page
    # frames beside a GIF and a training_curves.png that repeats log.csv are left out
    assert "frame_0000.png" not in page and "plots/training_curves.png" not in page
    counter = _parse(page)
    assert len(counter.points) == 2 * NUM_POINTS  # PCA and t-SNE
    assert {tag for tag, _, _ in counter.points} == {"circle"}
    assert sorted({key for _, key, _ in counter.points}, key=int) == [
        str(i) for i in range(NUM_POINTS)]
    data = json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)'
                                r"</script>", page, re.S).group(1))
    assert len(data["thumbs"]) == NUM_POINTS
    assert all(thumb.startswith("data:image/png;base64,") for thumb in data["thumbs"])
    assert data["labels"] == [int(i) // (NUM_POINTS // NUM_CLASSES) for i in range(NUM_POINTS)]


def test_report_is_self_contained(full_report):
    _, _, page = full_report
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"""(?:src|href|action|poster)\s*=\s*["']?\s*(?!data:|#)[a-z]+:""",
                         page, re.I)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*//""", page, re.I)
    assert not re.search(r"url\(|@import", page, re.I)
    sources = re.findall(r"""\s(?:src|href)\s*=\s*["']([^"']*)""", page)
    assert sources and all(s.startswith(("data:", "#")) for s in sources)


def test_point_cap_is_stratified_and_said(tmp_path):
    folder = _make_experiment(tmp_path / "capped", parts=("embeddings",))
    page = write_report(folder, tmp_path / "out" / "capped.html", max_points=30,
                        tsne_max_points=12).read_text()
    assert "Showing 30 of 60 points" in page and "stratified" in page
    assert "t-SNE plot shows 12 of the 30 points" in page
    counter = _parse(page)
    assert len(counter.points) == 30 + 12
    pca_labels = [label for _, _, label in counter.points[:30]]
    assert sorted(pca_labels.count(str(k)) for k in range(NUM_CLASSES)) == [10, 10, 10]
    for text in ("No metrics.json", "No config.json", "No log.csv", "No pictures under plots/"):
        assert text in page


def test_missing_images_and_no_tsne(tmp_path):
    folder = _make_experiment(tmp_path / "plain", images=False, parts=("embeddings",))
    page = write_report(folder, tsne_max_points=0).read_text()
    assert "hovering a point shows its label only" in page
    assert "t-SNE turned off" in page
    assert len(_parse(page).points) == NUM_POINTS
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', page, re.S).group(1))
    assert data["thumbs"] is None


def test_only_metrics(tmp_path):
    folder = _make_experiment(tmp_path / "metrics-only", parts=("metrics",))
    page = write_report(folder).read_text()
    assert "precision_at_1" in page and "No scatter plot" in page
    assert not _parse(page).points


def test_empty_or_absent_folder_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("nothing useful")
    with pytest.raises(FileNotFoundError, match="at least one of config.json"):
        write_report(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_report(tmp_path / "absent")
    assert not (tmp_path / "empty" / "report.html").exists()


def test_mismatched_embedding_files_are_an_error(tmp_path):
    folder = _make_experiment(tmp_path / "broken", parts=("embeddings",))
    np.save(folder / "embeddings" / "test_labels.npy", np.zeros(5, dtype=int))
    with pytest.raises(ValueError, match="one label per embedding"):
        write_report(folder)


@pytest.mark.parametrize("max_points", [1, 2, 3, 7, 59, 60, 100], ids=lambda n: f"cap{n}")
def test_stratified_sample(max_points):
    labels = np.array([0] * 40 + [1] * 15 + [2] * 5)
    sample = report.stratified_sample(labels, max_points, seed=1)
    assert len(sample) == min(max_points, 60) and len(set(sample)) == len(sample)
    assert np.all(np.diff(sample) > 0)
    if 3 <= max_points < 60:
        counts = np.bincount(labels[sample], minlength=3)
        assert np.all(counts >= 1)
        assert np.all(np.abs(counts - np.array([40, 15, 5]) * max_points / 60) < 1.5)


# --- headless Chromium ----------------------------------------------------------------------

_CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _chromium():
    for name in _CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _dump_dom(browser, page_path, profile):
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--disable-extensions",
               f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
               "--virtual-time-budget=5000", "--dump-dom", page_path.resolve().as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, result.stderr


_PROBE_HEAD = """<script>
(function () {
  var errors = [];
  function note(kind, text) {
    errors.push(kind + ": " + text);
    document.documentElement.setAttribute("data-probe-errors", errors.join(" | "));
  }
  window.addEventListener("error", function (event) {
    note("error", event.message || (event.target && (event.target.src || event.target.tagName)));
  }, true);
  window.addEventListener("unhandledrejection", function (event) {
    note("rejection", event.reason);
  });
  ["error", "warn"].forEach(function (level) {
    var original = console[level];
    console[level] = function () {
      note(level, Array.prototype.join.call(arguments, " "));
      return original.apply(console, arguments);
    };
  });
})();
</script>"""

_PROBE_TAIL = """<script>
(function () {
  var root = document.documentElement;
  var circle = document.querySelector('svg.scatter circle[data-point="5"]');
  var box = circle.getBoundingClientRect();
  circle.dispatchEvent(new MouseEvent("mouseover", {bubbles: true, clientX: box.x + 1,
                                                    clientY: box.y + 1}));
  var tip = document.getElementById("tooltip");
  var image = tip.querySelector("img");
  root.setAttribute("data-probe-tooltip-hidden", String(tip.hidden));
  root.setAttribute("data-probe-tooltip-text", tip.textContent);
  root.setAttribute("data-probe-tooltip-image", image ? image.src.slice(0, 22) : "none");
  root.setAttribute("data-probe-highlighted",
                    String(document.querySelectorAll("circle.hl").length));
  var legend = document.querySelector('ul.legend li[data-class="1"]');
  legend.click();
  root.setAttribute("data-probe-hidden-points",
                    String(document.querySelectorAll("circle.off").length));
  window.addEventListener("load", function () {
    var broken = Array.prototype.filter.call(document.images, function (img) {
      return !img.complete || img.naturalWidth === 0;
    }).length;
    root.setAttribute("data-probe-images", document.images.length + "/" + broken);
  });
})();
</script>"""


@pytest.mark.skipif(_chromium() is None,
                    reason="no Chromium binary (install: apt-get install -y chromium)")
def test_report_loads_in_headless_chromium(full_report, tmp_path):
    browser = _chromium()
    _, path, page = full_report

    dom, log = _dump_dom(browser, path, tmp_path / "profile-plain")
    console = [line for line in log.splitlines() if "CONSOLE" in line]
    assert not console, "the page wrote to the console:\n" + "\n".join(console)
    counter = _parse(dom)
    assert counter.attributes.get("data-report-ready") == "1", "the page's script did not finish"
    assert len(counter.points) == 2 * NUM_POINTS

    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("<head>", "<head>" + _PROBE_HEAD, 1)
                     .replace("</body>", _PROBE_TAIL + "</body>", 1), encoding="utf-8")
    dom, _ = _dump_dom(browser, probe, tmp_path / "profile-probe")
    seen = _parse(dom).attributes
    assert "data-probe-errors" not in seen, seen.get("data-probe-errors")
    assert seen.get("data-report-ready") == "1"
    assert seen["data-probe-tooltip-hidden"] == "false"
    assert seen["data-probe-tooltip-text"] == "label 0 · #5"
    assert seen["data-probe-tooltip-image"] == "data:image/png;base64,"
    assert seen["data-probe-highlighted"] == "2"  # the same point in the PCA and t-SNE plots
    assert seen["data-probe-hidden-points"] == str(2 * NUM_POINTS // NUM_CLASSES)
    total, broken = seen["data-probe-images"].split("/")
    assert int(total) >= 3 and broken == "0"


@pytest.mark.skipif(_chromium() is None,
                    reason="no Chromium binary (install: apt-get install -y chromium)")
def test_headless_check_catches_a_script_error(tmp_path, monkeypatch):
    """The browser check above is not vacuous: a broken script is seen."""
    monkeypatch.setattr(report, "_JS", "document.querySelector('#nothing').click();" + report._JS)
    folder = _make_experiment(tmp_path / "broken-js", parts=("embeddings",))
    path = write_report(folder, tsne_max_points=0)
    dom, log = _dump_dom(_chromium(), path, tmp_path / "profile")
    assert "Uncaught TypeError" in log
    assert "data-report-ready" not in _parse(dom).attributes


# --- what the metrics describe, and no picture twice ----------------------------------------

TRAINED_METRICS = {
    "test_to_train": {"precision_at_1": 0.9416666666666667, "map_at_r": 0.4488036678859994,
                      "recall_at_2": 0.97},
    "test_leave_one_out": {"precision_at_1": 0.9027777777777778, "map_at_r": 0.43353415,
                           "recall_at_2": 0.9388888888888889, "nmi": 0.6078040387122515},
    "model": "best.keras", "best_epoch": 2, "backend": "jax", "epochs": 3,
    "train_seconds": 26.63,
}


def _scores_table(page):
    match = re.search(r'<table class="scores">(.*?)</table>', page, re.S)
    assert match, "no scores table"
    table = match.group(1)
    header = re.findall(r'<th scope="col">(.*?)</th>', table)
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table.split("</thead>")[1], re.S):
        name = re.search(r'<th scope="row">(.*?)</th>', row).group(1)
        rows[name] = re.findall(r"<td[^>]*>(.*?)</td>", row)
    return header, rows


def test_metrics_are_a_table_of_protocols(tmp_path):
    folder = _make_experiment(tmp_path / "run", parts=("config",))
    # sorted keys, as metrics.json is written: the page still puts test -> train first
    (folder / "metrics.json").write_text(json.dumps(TRAINED_METRICS, sort_keys=True))
    page = write_report(folder).read_text()
    header, rows = _scores_table(page)
    assert header == ["metric", "test → train", "leave-one-out (test)"]
    assert list(rows) == ["precision_at_1", "recall_at_2", "map_at_r", "nmi"]
    assert rows["precision_at_1"] == ["0.9417", "0.9028"]
    assert rows["recall_at_2"] == ["0.9700", "0.9389"]  # the same decimals everywhere
    assert rows["nmi"] == ["–", "0.6078"]
    assert "epochs" not in rows and "train_seconds" not in rows
    run = re.search(r'<table class="kv run">(.*?)</table>', page, re.S).group(1)
    assert "best.keras (the model of epoch 2, kept as best)" in run
    assert "Keras backend</th><td>jax" in run and "26.6 s" in run


def test_static_copies_of_interactive_plots_are_left_out(tmp_path):
    folder = _make_experiment(tmp_path / "run")
    picture = Image.new("RGB", (10, 10))
    for name in ("pca.png", "tsne.png", "umap.png"):
        picture.save(folder / "plots" / name)
    page = write_report(folder, tsne_max_points=0).read_text()
    assert 'alt="plots/pca.png"' not in page and 'alt="plots/tsne.png"' not in page
    assert 'alt="plots/umap.png"' in page and 'alt="plots/neighbors.png"' in page
    # without embeddings there is no interactive plot: the pictures stay
    bare = _make_experiment(tmp_path / "bare", parts=("plots",))
    picture.save(bare / "plots" / "pca.png")
    assert 'alt="plots/pca.png"' in write_report(bare).read_text()


def test_held_out_curves_have_a_legend(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from tripletlab.visualization.plot import training_curves_figure

    log = tmp_path / "log.csv"
    log.write_text("epoch,loss,val_map_at_r\n0,1.0,0.3\n1,0.8,0.5\n")
    figure = training_curves_figure(log)
    legends = {axis.get_title(): axis.get_legend() for axis in figure.axes if axis.get_visible()}
    assert legends["map_at_r"] is not None
    assert [t.get_text() for t in legends["map_at_r"].get_texts()] == ["held-out test (val_)"]


def test_given_projections_are_used_and_checked(tmp_path):
    """``projections=``: the PCA and (when it shows every point) t-SNE handed over are drawn as
    they are; a projection of another length is refused."""
    folder = _make_experiment(tmp_path / "given", parts=("embeddings",))
    points = np.stack([np.arange(NUM_POINTS), np.arange(NUM_POINTS) % 7], axis=1)
    points = points.astype(np.float32)
    page = write_report(folder, tmp_path / "given.html", tsne_max_points=NUM_POINTS,
                        projections={"pca": points, "tsne": points[::-1].copy()}).read_text()
    fresh = write_report(folder, tmp_path / "fresh.html", tsne_max_points=NUM_POINTS).read_text()
    circles = re.findall(r'<circle data-point="(\d+)"[^>]*cx="([\d.]+)" cy="([\d.]+)"', page)
    assert len(circles) == 2 * NUM_POINTS
    # a straight line of points: every x coordinate differs, and the t-SNE plot is its mirror
    pca = {int(key): float(x) for key, x, _ in circles[:NUM_POINTS]}
    tsne = {int(key): float(x) for key, x, _ in circles[NUM_POINTS:]}
    assert all(pca[i] < pca[i + 1] for i in range(NUM_POINTS - 1))
    assert all(tsne[i] > tsne[i + 1] for i in range(NUM_POINTS - 1))
    assert page != fresh
    with pytest.raises(ValueError, match=r"projections\['pca'\]"):
        write_report(folder, tmp_path / "bad.html", projections={"pca": points[:-1]})
