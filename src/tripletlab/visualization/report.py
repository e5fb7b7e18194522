"""One self-contained, offline HTML page for an experiment folder.

Everything the page needs is inside the file: CSS and JavaScript inline, pictures as base64
``data:`` URIs, the scatter plots as inline SVG with one ``<circle data-point="i">`` per point.
It references no CDN and no URL, so it opens from disk, from an e-mail attachment or on a
machine with no network, and shows the same thing in ten years.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tripletlab import _checks
from tripletlab.atomic import Recorder, write_text
from tripletlab.data.augmentation import describe as describe_augmentation
from tripletlab.errors import ConfigError, UserFileNotFoundError
from tripletlab.experiment import (
    CONFIG_FILE,
    LOG_FILE,
    METRICS_FILE,
    PLOTS_DIR,
    REPORT_FILE,
    TEST_EMBEDDINGS,
    TEST_IMAGES,
    TEST_LABELS,
    THUMBNAIL_PIXELS,
)
from tripletlab.stratified import stratified_sample
from tripletlab.visualization.experiment_plots import AUGMENTATION
from tripletlab.visualization.plot import (
    as_labels,
    as_uint8_images,
    class_colors,
    figure_png_bytes,
    training_curves_figure,
)
from tripletlab.visualization.project import as_embedding_matrix, project

PICTURE_SUFFIXES = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg",
                    ".jpeg": "image/jpeg"}
_FRAME_NAME = re.compile(r"frame_\d+\.png")
_SVG_SIZE = 560.0
_SVG_PAD = 12.0


def write_report(experiment_dir: str | os.PathLike, path: str | os.PathLike | None = None, *,
                 max_points: int = 2000, tsne_max_points: int = 1000, seed: int = 0,
                 projections: Mapping[str, Any] | None = None,
                 training_curves: str | os.PathLike | None = None,
                 record: Recorder | None = None) -> Path:
    """Writes one self-contained offline HTML page describing an experiment folder.

    Reads whichever of these exist (paths relative to ``experiment_dir``):

    - ``config.json``: the resolved configuration, shown as a table (nested keys joined by
      dots).
    - ``metrics.json``: the scores of each protocol (``test_to_train``,
      ``test_leave_one_out``: name → number) as one table with a column per protocol and four
      decimals; the other keys (``model``, ``best_epoch``, ``backend``, ``epochs``,
      ``train_seconds``) in a table of their own below it.
    - ``log.csv``: a Keras ``CSVLogger`` file, drawn as training curves (a PNG made by
      :func:`tripletlab.visualization.training_curves`; ``plots/training_curves.png`` is then
      not repeated).
    - ``embeddings/test_embeddings.npy`` and ``embeddings/test_labels.npy`` (and optionally
      ``embeddings/test_images.npy``, ``uint8 [N, H, W, C]``): two interactive scatter plots
      as inline SVG: PCA fitted on all embeddings, showing at most ``max_points`` points (a
      sample stratified by class; the page says so), and t-SNE of at most
      ``tsne_max_points`` of those points (stratified again);
      hovering a point shows its image and label, and highlights the same point in the other
      plot; clicking a class in the legend hides or shows it.
    - ``plots/**.png`` (and ``.gif``, ``.jpg``): e.g. neighbour grids, embedded as they are;
      ``frame_NNNN.png`` files in a folder that also holds a GIF (as
      :class:`tripletlab.visualization.LivePCA` writes them) are represented by the GIF, and
      ``plots/pca.png`` / ``plots/tsne.png`` are left out when the interactive scatter plots
      are drawn.

    - index folders inside the experiment (``tripletlab index --output DIR/...``): a section
      "Search index" with each index's size, distance, kind, recall@k against exact search,
      and its calibration (threshold, scores, curve) when ``tripletlab calibrate`` ran.
    - ``plots/augmentation.png`` and the ``[augmentation]`` keys of ``config.json``: a section
      "Augmentation" with the transforms and the grid of one augmented training image, or
      saying that augmentation was off (absent without ``config.json`` and the picture).

    A missing part is left out with a note on the page.

    Args:
      experiment_dir: the experiment folder.
      path: the output file; default ``experiment_dir / "report.html"``.
      max_points: the most points drawn in each scatter plot.
      tsne_max_points: the most points in the t-SNE plot (t-SNE's time grows quickly: about
        ten seconds for 1,000 points on two cores); 0 turns t-SNE off.
      seed: seed of the stratified sample and of t-SNE.
      projections: 2-D points already computed for every row of
        ``embeddings/test_embeddings.npy``, in its order, by method (``"pca"``, ``"tsne"``),
        e.g. those :func:`tripletlab.visualization.write_plots` drew: ``"pca"`` is used
        instead of fitting PCA again, and ``"tsne"`` when the t-SNE plot shows every row
        (t-SNE of a subset is another computation). ``tripletlab train`` hands over its own, so
        each projection runs once per run.
      training_curves: a PNG of ``log.csv``'s curves already drawn (``plots/training_curves.png``
        as :func:`tripletlab.visualization.write_plots` draws it), embedded as it is instead
        of being drawn again; ignored without ``log.csv``.
      record: called with the page's path before it is written (an experiment's
        :meth:`~tripletlab.experiment.Experiment.record`).

    Returns:
      The path of the HTML file.

    Raises:
      FileNotFoundError: ``experiment_dir`` does not exist or holds none of the parts above.
      ValueError: the embedding files disagree in length, a JSON file is malformed, or a
        projection in ``projections`` is not ``[N, 2]``.
      ImportError: scikit-learn, matplotlib or Pillow is missing (``pip install
        "tripletlab[viz]"``).

    Example:
      >>> write_report("experiments/mnist-semihard")  # doctest: +SKIP
      PosixPath('experiments/mnist-semihard/report.html')
    """
    _checks.check_number("max_points", max_points, minimum=1, integer=True)
    _checks.check_number("tsne_max_points", tsne_max_points, minimum=0, integer=True)
    _checks.check_number("seed", seed, minimum=0, integer=True)
    folder = Path(experiment_dir)
    if not folder.is_dir():
        raise UserFileNotFoundError(f"Expected `experiment_dir` to be a folder. Received: "
                                    f"experiment_dir={str(experiment_dir)!r}, which does not "
                                    "exist.")
    parts = {name: folder / name for name in
             (CONFIG_FILE, METRICS_FILE, LOG_FILE, TEST_EMBEDDINGS, TEST_LABELS, TEST_IMAGES)}
    pictures = _find_pictures(folder / PLOTS_DIR)
    has_embeddings = parts[TEST_EMBEDDINGS].is_file() and parts[TEST_LABELS].is_file()
    if not (parts[CONFIG_FILE].is_file() or parts[METRICS_FILE].is_file()
            or parts[LOG_FILE].is_file() or has_embeddings or pictures):
        raise UserFileNotFoundError(
            "Expected an experiment folder with at least one of config.json, metrics.json, "
            "log.csv, embeddings/test_embeddings.npy with embeddings/test_labels.npy, or "
            f"pictures under plots/. Received: experiment_dir={str(folder)!r} with none of them.")

    sections: list[tuple[str, str, str]] = []  # (id, title, body)
    sections.append(("metrics", "Metrics", _metrics_section(parts[METRICS_FILE])))
    curves_drawn = parts[LOG_FILE].is_file()
    sections.append(("curves", "Training curves",
                     _curves_section(parts[LOG_FILE], training_curves)))
    point_data: dict[str, Any] = {}
    sections.append(("embedding", "Embedding",
                     _embedding_section(parts, max_points, tsne_max_points, seed, point_data,
                                        projections or {})))
    if curves_drawn:
        pictures = [p for p in pictures if p.stem != "training_curves"]
    if point_data:  # the interactive scatter plots replace the static PCA / t-SNE pictures
        pictures = [p for p in pictures if p.relative_to(folder).as_posix()
                    not in (f"{PLOTS_DIR}/pca.png", f"{PLOTS_DIR}/tsne.png")]
    augmentation_picture = folder / PLOTS_DIR / AUGMENTATION
    if parts[CONFIG_FILE].is_file() or augmentation_picture.is_file():
        sections.append(("augmentation", "Augmentation",
                         _augmentation_section(parts[CONFIG_FILE], augmentation_picture)))
        pictures = [p for p in pictures if p != augmentation_picture]
    sections.append(("plots", "Plots", _plots_section(folder, pictures)))
    indexes = _index_folders(folder)
    if indexes:
        sections.append(("search", "Search index", _index_section(folder, indexes)))
    sections.append(("config", "Configuration", _config_section(parts[CONFIG_FILE])))

    target = Path(path) if path is not None else folder / REPORT_FILE
    page = _page(folder.resolve().name, str(folder), sections, point_data)
    return write_text(target, page, record=record)


# --- sections ----------------------------------------------------------------------------------

# metrics.json's protocols (tables of scores) and their column titles
PROTOCOLS = {"test_to_train": "test → train", "test_leave_one_out": "leave-one-out (test)"}
# how metrics.json's other keys are shown (in this order; others follow)
RUN_FACTS = {"model": "scores of", "best_epoch": "best epoch", "backend": "Keras backend",
             "epochs": "epochs", "train_seconds": "training time"}


def _metrics_section(path: Path) -> str:
    """Retrieval scores as one table (rows: metrics, columns: protocols, four decimals), then
    the facts of the run (which model was scored, backend, epochs, training time)."""
    if not path.is_file():
        return _note(f"No {METRICS_FILE} in this experiment.")
    metrics = _read_json(path)
    if not isinstance(metrics, dict) or not metrics:
        return _note(f"{METRICS_FILE} holds no name → value pairs.")
    protocols = {key: metrics[key] for key in sorted(
        (key for key, value in metrics.items() if isinstance(value, dict)),
        key=lambda key: (list(PROTOCOLS).index(key) if key in PROTOCOLS else len(PROTOCOLS)))}
    facts = {key: value for key, value in metrics.items() if not isinstance(value, dict)}
    if isinstance(facts.get("model"), str):
        facts.pop("best_epoch", None)  # said beside the model's name
    if not protocols:  # a flat file (``tripletlab evaluate --output``): one column of scores
        scores = {key: value for key, value in facts.items()
                  if isinstance(value, float) or value is None}
        protocols = {"score": scores} if scores else {}
        facts = {key: value for key, value in facts.items() if key not in scores}
    parts = []
    if protocols:
        names = sorted(dict.fromkeys(name for scores in protocols.values() for name in scores),
                       key=_metric_rank)
        head = "".join(f'<th scope="col">{_e(PROTOCOLS.get(key, key))}</th>' for key in protocols)
        rows = []
        for name in names:
            cells = "".join(_score_cell(scores.get(name)) for scores in protocols.values())
            rows.append(f'<tr><th scope="row">{_e(name)}</th>{cells}</tr>')
        parts.append(f'<table class="scores"><thead><tr><th scope="col">metric</th>{head}</tr>'
                     f'</thead><tbody>{"".join(rows)}</tbody></table>')
    if facts:
        ordered = [key for key in RUN_FACTS if key in facts]
        ordered += [key for key in facts if key not in RUN_FACTS]
        rows = "".join(f'<tr><th scope="row">{_e(RUN_FACTS.get(key, key))}</th>'
                       f'<td>{_e(_fact(key, facts[key], metrics))}</td></tr>' for key in ordered)
        parts.append(f'<table class="kv run"><tbody>{rows}</tbody></table>')
    return "".join(parts)


def _metric_rank(name: str) -> tuple[int, float, str]:
    """P@1, R@k by k, R-precision, MAP@R, NMI, AMI, then any other name alphabetically."""
    order = ("precision_at_1", "recall_at_", "r_precision", "map_at_r", "nmi", "ami")
    for rank, prefix in enumerate(order):
        if name == prefix or (prefix.endswith("_") and name.startswith(prefix)):
            suffix = name[len(prefix):]
            return rank, float(suffix) if suffix.isdigit() else 0.0, name
    return len(order), 0.0, name


def _score_cell(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return f'<td class="num" title="{_e(repr(value))}">{value:.4f}</td>'
    return '<td class="num missing">–</td>'


def _fact(key: str, value: Any, facts: dict[str, Any]) -> str:
    if key == "model" and isinstance(value, str):
        epoch = facts.get("best_epoch")
        return value + (f" (the model of epoch {epoch}, kept as best)" if epoch else "")
    if key == "train_seconds" and isinstance(value, (int, float)):
        return f"{value:,.1f} s"
    if key == "backend" and value is None:
        return "not recorded"
    return _format_value(value)


def _config_section(path: Path) -> str:
    if not path.is_file():
        return _note(f"No {CONFIG_FILE} in this experiment.")
    config = _read_json(path)
    if not isinstance(config, dict):
        return f"<pre>{_e(json.dumps(config, indent=2))}</pre>"
    rows = [f'<tr><th scope="row">{_e(name)}</th><td><code>{_e(_format_value(value))}'
            f"</code></td></tr>" for name, value in _flatten(config).items()]
    if not rows:
        return _note(f"{CONFIG_FILE} is empty.")
    return f'<table class="kv"><tbody>{"".join(rows)}</tbody></table>'


def _augmentation_section(config_path: Path, picture: Path) -> str:
    """The transforms of the ``[augmentation]`` keys in ``config.json`` and the grid of one
    augmented training image (``plots/augmentation.png``), or a note that it was off."""
    config = _read_json(config_path) if config_path.is_file() else None
    lines = describe_augmentation(config) if isinstance(config, dict) else []
    parts = []
    if lines:
        parts.append(f'<p class="note">Training batches were augmented (evaluation and the '
                     f'exports were not): {_e(", ".join(lines))}.</p>')
    elif config is not None and not picture.is_file():
        return _note("Augmentation off: the training batches were the images as they are.")
    if picture.is_file():
        name = picture.relative_to(picture.parent.parent).as_posix()
        uri = _data_uri(picture.read_bytes(), "image/png")
        parts.append(f'<figure class="picture"><img alt="{_e(name)}" src="{uri}">'
                     f"<figcaption>{_e(name)}: one training image and augmentations of it"
                     "</figcaption></figure>")
    return "".join(parts)


def _curves_section(path: Path, drawn: str | os.PathLike | None) -> str:
    if not path.is_file():
        return _note(f"No {LOG_FILE} (Keras CSVLogger) in this experiment.")
    if drawn is not None:
        png = Path(drawn).read_bytes()
    else:
        png = figure_png_bytes(training_curves_figure(path))
    return (f'<img class="wide" alt="training curves from {LOG_FILE}" '
            f'src="{_data_uri(png, "image/png")}">')


def _embedding_section(parts: dict[str, Path], max_points: int, tsne_max_points: int,
                       seed: int, point_data: dict[str, Any],
                       projections: Mapping[str, Any]) -> str:
    embeddings_path, labels_path = parts[TEST_EMBEDDINGS], parts[TEST_LABELS]
    if not embeddings_path.is_file() or not labels_path.is_file():
        missing = [name for name in (TEST_EMBEDDINGS, TEST_LABELS) if not parts[name].is_file()]
        return _note(f"No scatter plot: {', '.join(missing)} missing.")
    embeddings = as_embedding_matrix(np.load(embeddings_path, allow_pickle=False),
                                     TEST_EMBEDDINGS)
    labels = as_labels(np.load(labels_path, allow_pickle=False), TEST_LABELS)
    total = embeddings.shape[0]
    if labels.shape[0] != total:
        raise ConfigError(f"Expected {TEST_LABELS} to have one label per embedding. Received: "
                          f"{labels.shape[0]} labels for {total} embeddings.")
    if total < 3:
        return _note(f"No scatter plot: only {total} embeddings.")
    images = None
    if parts[TEST_IMAGES].is_file():
        images = as_uint8_images(np.load(parts[TEST_IMAGES], allow_pickle=False), TEST_IMAGES)
        if images.shape[0] != total:
            raise ConfigError(f"Expected {TEST_IMAGES} to have one image per embedding. "
                              f"Received: {images.shape[0]} images for {total} embeddings.")

    sample = stratified_sample(labels, max_points, seed)
    shown = len(sample)
    classes = [int(label) for label in np.unique(labels)]
    colors = dict(zip(classes, class_colors(len(classes)), strict=True))
    notes = [f"{total:,} test embeddings of dimension {embeddings.shape[1]}, "
             f"{len(classes)} classes."]
    if shown < total:
        notes.append(f"Showing {shown:,} of {total:,} points: a random sample stratified by "
                     f"class (at most {max_points:,}).")
    else:
        notes.append(f"Showing all {total:,} points.")
    everyone = np.arange(shown)
    pca = _given_projection(projections, "pca", total)
    if pca is None:
        pca = project(embeddings, "pca", seed=seed)
    plots = [("PCA (fitted on all embeddings)", everyone, pca[sample])]
    if tsne_max_points == 0:
        notes.append("t-SNE turned off (tsne_max_points=0).")
    elif shown < 5:
        notes.append(f"t-SNE left out: only {shown} points.")
    else:
        subset = stratified_sample(labels[sample], tsne_max_points, seed)
        title = "t-SNE" if len(subset) == shown else f"t-SNE ({len(subset):,} of these points)"
        rows = sample[subset]
        tsne = _given_projection(projections, "tsne", total) if len(rows) == total else None
        if tsne is None:
            tsne = project(embeddings[rows], "tsne", seed=seed)
        plots.append((title, subset, tsne))
        if len(subset) < shown:
            notes.append(f"The t-SNE plot shows {len(subset):,} of the {shown:,} points, "
                         f"stratified by class (tsne_max_points={tsne_max_points:,}).")
    if images is None:
        notes.append(f"No {TEST_IMAGES}: hovering a point shows its label only.")
    else:
        notes.append("Hover a point to see its image; click a class to hide or show it.")

    point_data["labels"] = [int(label) for label in labels[sample]]
    point_data["index"] = [int(index) for index in sample]
    point_data["thumbs"] = (None if images is None
                            else [_thumbnail_uri(images[index]) for index in sample])
    radius = max(1.8, min(5.0, 60.0 / math.sqrt(shown)))
    figures = "".join(_svg_scatter(title, keys, points, labels[sample][keys], colors, radius)
                      for title, keys, points in plots)
    legend = "".join(
        f'<li data-class="{label}" tabindex="0" role="button" aria-pressed="true">'
        f'<span class="swatch" style="background:{colors[label]}"></span>{label}'
        f' <span class="count">({int(np.sum(labels[sample] == label))})</span></li>'
        for label in classes)
    paragraphs = "".join(f'<p class="note">{_e(note)}</p>' for note in notes)
    return (f'{paragraphs}<ul class="legend" aria-label="classes">{legend}</ul>'
            f'<div class="scatters">{figures}</div>')


def _plots_section(folder: Path, pictures: list[Path]) -> str:
    if not pictures:
        return _note(f"No pictures under {PLOTS_DIR}/.")
    figures = []
    for picture in pictures:
        name = picture.relative_to(folder).as_posix()
        uri = _data_uri(picture.read_bytes(), PICTURE_SUFFIXES[picture.suffix.lower()])
        figures.append(f'<figure class="picture"><img alt="{_e(name)}" src="{uri}">'
                       f"<figcaption>{_e(name)}</figcaption></figure>")
    return f'<div class="pictures">{"".join(figures)}</div>'


def _index_folders(folder: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The index folders directly inside the experiment, with their manifests."""
    from tripletlab.retrieval.index_folder import MANIFEST, read_manifest

    found = []
    for candidate in sorted(p for p in folder.iterdir() if (p / MANIFEST).is_file()):
        try:
            found.append((candidate, read_manifest(candidate)))
        except ConfigError:
            continue  # another kind of manifest (not an index)
    return found


def _index_section(folder: Path, indexes: list[tuple[Path, dict[str, Any]]]) -> str:
    blocks = []
    for path, manifest in indexes:
        recall = manifest.get("recall")
        facts = {"items": f"{manifest['count']:,}", "dimension": manifest["dimension"],
                 "distance": manifest["distance"], "index": manifest["settings"]["kind"],
                 "recall against exact search": (
                     "exact search" if recall is None
                     else f"recall@{recall['k']} = {recall['recall']:.4f} "
                          f"({recall['sample']:,} items sampled)")}
        calibration = manifest.get("calibration")
        if calibration:
            target = calibration.get("target")
            facts["threshold"] = (f"{calibration['threshold']:.6g} ({calibration['rule']}"
                                  + ("" if target is None else f", target {target:g}") + ")")
            facts.update({name: f"{value:.4f}" for name, value in
                          calibration.get("scores", {}).items()})
        rows = "".join(f"<tr><th>{_e(key)}</th><td>{_e(str(value))}</td></tr>"
                       for key, value in facts.items())
        picture = path / manifest.get("extra_files", {}).get("calibration_picture", "")
        figure = ""
        if picture.is_file() and picture != path:
            uri = _data_uri(picture.read_bytes(), "image/png")
            figure = (f'<figure class="picture"><img alt="calibration curve" src="{uri}">'
                      f"<figcaption>{_e(picture.relative_to(folder).as_posix())}</figcaption>"
                      "</figure>")
        blocks.append(f"<h3>{_e(path.relative_to(folder).as_posix())}/</h3>"
                      f"<table>{rows}</table>{figure}")
    return "".join(blocks)


# --- pieces ------------------------------------------------------------------------------------

def _given_projection(projections: Mapping[str, Any], method: str,
                      total: int) -> np.ndarray | None:
    """``projections[method]`` checked to be ``[total, 2]``, or ``None`` if not given."""
    if method not in projections:
        return None
    points = np.asarray(projections[method])  # as project() returned them (float32)
    if points.shape != (total, 2):
        raise ValueError(f"Expected `projections[{method!r}]` to hold one 2-D point per row of "
                         f"{TEST_EMBEDDINGS} ([{total}, 2]). Received: shape {points.shape}.")
    return points


def _svg_scatter(title: str, keys: np.ndarray, points: np.ndarray, labels: np.ndarray,
                 colors: dict[int, str], radius: float) -> str:
    """One ``<svg>``; point ``j`` gets ``data-point=keys[j]`` (its place in the sample)."""
    low, high = points.min(axis=0), points.max(axis=0)
    span = float(max(high[0] - low[0], high[1] - low[1], 1e-12))
    scale = (_SVG_SIZE - 2 * _SVG_PAD) / span
    offset = (_SVG_SIZE - (high - low) * scale) / 2  # centre the shorter axis
    xs = offset[0] + (points[:, 0] - low[0]) * scale
    ys = _SVG_SIZE - (offset[1] + (points[:, 1] - low[1]) * scale)
    order = np.random.default_rng(0).permutation(points.shape[0])  # no class drawn on top
    circles = "".join(
        f'<circle data-point="{keys[i]}" data-label="{int(labels[i])}" cx="{xs[i]:.1f}" '
        f'cy="{ys[i]:.1f}" r="{radius:.1f}" fill="{colors[int(labels[i])]}"></circle>'
        for i in order)
    size = f"{_SVG_SIZE:g}"
    return (f'<figure class="scatter"><figcaption>{_e(title)}</figcaption>'
            f'<svg class="scatter" viewBox="0 0 {size} {size}" role="img" '
            f'aria-label="{_e(title)}"><rect class="frame" x="0.5" y="0.5" '
            f'width="{_SVG_SIZE - 1:g}" height="{_SVG_SIZE - 1:g}"></rect>'
            f"{circles}</svg></figure>")


def _thumbnail_uri(image: np.ndarray) -> str:
    """A PNG ``data:`` URI of ``image``, shrunk (Lanczos) to at most ``THUMBNAIL_PIXELS`` a side;
    the images tripletlab exports are no larger already (:func:`tripletlab.experiment.thumbnails`),
    so only other folders' images are resized here."""
    from PIL import Image

    picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    if max(picture.size) > THUMBNAIL_PIXELS:
        picture.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return _data_uri(buffer.getvalue(), "image/png")


def _find_pictures(plots_dir: Path) -> list[Path]:
    """Pictures under ``plots_dir``, sorted; ``frame_NNNN.png`` beside a GIF are left out."""
    if not plots_dir.is_dir():
        return []
    found = sorted(p for p in plots_dir.rglob("*")
                   if p.is_file() and p.suffix.lower() in PICTURE_SUFFIXES
                   and not p.name.startswith("."))
    animated = {p.parent for p in found if p.suffix.lower() == ".gif"}
    return [p for p in found if not (p.parent in animated and _FRAME_NAME.fullmatch(p.name))]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ConfigError(f"Expected {path} to hold JSON. Received: {error}.") from error


def _flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _format_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) and value != 0 else str(value)
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _data_uri(payload: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _note(text: str) -> str:
    return f'<p class="note missing">{_e(text)}</p>'


def _page(name: str, folder: str, sections: list[tuple[str, str, str]],
          point_data: dict[str, Any]) -> str:
    created = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    nav = "".join(f'<a href="#{key}">{_e(title)}</a>' for key, title, _ in sections)
    body = "".join(f'<section id="{key}"><h2>{_e(title)}</h2>{content}</section>'
                   for key, title, content in sections)
    data = json.dumps(point_data, separators=(",", ":")).replace("</", "<\\/")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(name)} · tripletlab report</title>
<style>{_CSS}</style>
</head>
<body>
<header><h1>{_e(name)}</h1>
<p class="sub">tripletlab experiment report · {_e(folder)} · {created}</p>
<nav>{nav}</nav></header>
<main>{body}</main>
<div id="tooltip" role="tooltip" hidden></div>
<script type="application/json" id="report-data">{data}</script>
<script>{_JS}</script>
</body>
</html>
"""


_CSS = """
:root { --fg: #1d2330; --muted: #5b6472; --line: #dde1e7; --bg: #ffffff; --panel: #f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--fg); background: var(--bg); }
header { padding: 20px 32px 12px; border-bottom: 1px solid var(--line); background: var(--panel); }
h1 { margin: 0 0 2px; font-size: 24px; }
h2 { font-size: 19px; margin: 0 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
.sub { margin: 0 0 8px; color: var(--muted); font-size: 13px; }
nav a { margin-right: 16px; color: #1f5fbf; text-decoration: none; font-size: 14px; }
nav a:hover { text-decoration: underline; }
main { padding: 8px 32px 48px; max-width: 1280px; }
section { margin-top: 26px; }
.note { color: var(--muted); margin: 4px 0; font-size: 14px; }
.note.missing { font-style: italic; }
table.kv { border-collapse: collapse; font-size: 14px; min-width: 360px; }
table.kv th, table.kv td { text-align: left; padding: 4px 14px 4px 8px;
                           border-bottom: 1px solid var(--line); vertical-align: top; }
table.kv th { font-weight: 600; white-space: nowrap; }
table.kv td.num { font-variant-numeric: tabular-nums; text-align: right; }
table.kv tr:nth-child(even) { background: var(--panel); }
table.scores { border-collapse: collapse; font-size: 14px; margin-bottom: 14px; }
table.scores th, table.scores td { padding: 4px 14px 4px 8px;
                                   border-bottom: 1px solid var(--line); }
table.scores thead th { text-align: right; border-bottom: 2px solid var(--line); }
table.scores thead th:first-child, table.scores tbody th { text-align: left; font-weight: 600; }
table.scores td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.scores tr:nth-child(even) { background: var(--panel); }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; word-break: break-all; }
img.wide { max-width: 100%; height: auto; }
.scatters { display: flex; flex-wrap: wrap; gap: 20px; }
figure { margin: 0; }
figure.scatter { flex: 1 1 420px; max-width: 600px; }
figure.scatter figcaption { font-weight: 600; margin-bottom: 4px; }
svg.scatter { width: 100%; height: auto; display: block; background: #fff; }
svg.scatter rect.frame { fill: none; stroke: var(--line); }
svg.scatter circle { fill-opacity: 0.8; cursor: crosshair; }
svg.scatter circle.hl { stroke: #000; stroke-width: 2.5; fill-opacity: 1; }
svg.scatter circle.off { display: none; }
ul.legend { list-style: none; padding: 0; margin: 10px 0 12px; display: flex; flex-wrap: wrap;
            gap: 4px 14px; font-size: 13px; }
ul.legend li { cursor: pointer; user-select: none; display: flex; align-items: center; }
ul.legend li.off { opacity: 0.35; text-decoration: line-through; }
ul.legend .count { color: var(--muted); margin-left: 3px; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 50%;
          margin-right: 5px; }
.pictures { display: flex; flex-wrap: wrap; gap: 22px; align-items: flex-start; }
figure.picture { margin: 0; max-width: 100%; }
figure.picture img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figure.picture figcaption { color: var(--muted); font-size: 13px; }
#tooltip { position: fixed; z-index: 10; pointer-events: none; background: #fff;
           border: 1px solid #9aa3af; border-radius: 4px; padding: 6px;
           box-shadow: 0 2px 8px rgba(0,0,0,.18); font-size: 13px; text-align: center; }
#tooltip img { display: block; width: 84px; height: auto; image-rendering: pixelated;
               margin: 0 auto 4px; }
"""

_JS = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent || "{}");
  var tooltip = document.getElementById("tooltip");
  var byPoint = {};
  document.querySelectorAll("svg.scatter circle[data-point]").forEach(function (circle) {
    var key = circle.getAttribute("data-point");
    (byPoint[key] = byPoint[key] || []).push(circle);
  });

  function highlight(key, on) {
    (byPoint[key] || []).forEach(function (circle) { circle.classList.toggle("hl", on); });
  }

  function place(event) {
    var x = event.clientX + 14, y = event.clientY + 14;
    var box = tooltip.getBoundingClientRect();
    if (x + box.width > window.innerWidth) { x = event.clientX - box.width - 14; }
    if (y + box.height > window.innerHeight) { y = event.clientY - box.height - 14; }
    tooltip.style.left = Math.max(0, x) + "px";
    tooltip.style.top = Math.max(0, y) + "px";
  }

  function show(event, key) {
    var i = Number(key);
    tooltip.textContent = "";
    if (data.thumbs && data.thumbs[i]) {
      var img = document.createElement("img");
      img.src = data.thumbs[i];
      img.alt = "image of point " + data.index[i];
      tooltip.appendChild(img);
    }
    var text = document.createElement("div");
    text.textContent = "label " + data.labels[i] + " \\u00b7 #" + data.index[i];
    tooltip.appendChild(text);
    tooltip.hidden = false;
    place(event);
  }

  document.querySelectorAll("svg.scatter").forEach(function (svg) {
    svg.addEventListener("mouseover", function (event) {
      var key = event.target.getAttribute && event.target.getAttribute("data-point");
      if (key === null || key === undefined) { return; }
      highlight(key, true);
      show(event, key);
    });
    svg.addEventListener("mousemove", function (event) {
      if (!tooltip.hidden) { place(event); }
    });
    svg.addEventListener("mouseout", function (event) {
      var key = event.target.getAttribute && event.target.getAttribute("data-point");
      if (key === null || key === undefined) { return; }
      highlight(key, false);
      tooltip.hidden = true;
    });
  });

  function toggle(item) {
    var off = item.classList.toggle("off");
    item.setAttribute("aria-pressed", off ? "false" : "true");
    var selector = 'svg.scatter circle[data-label="' + item.getAttribute("data-class") + '"]';
    document.querySelectorAll(selector).forEach(function (circle) {
      circle.classList.toggle("off", off);
    });
  }
  document.querySelectorAll("ul.legend li[data-class]").forEach(function (item) {
    item.addEventListener("click", function () { toggle(item); });
    item.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); toggle(item); }
    });
  });
  document.documentElement.setAttribute("data-report-ready", "1");
})();
"""
