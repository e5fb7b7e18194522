"""``tripletlab train`` computes each projection once: the PCA and t-SNE its plots draw are
handed to the report, which is the page a fresh ``write_report`` draws."""

from __future__ import annotations

import re

import pytest

from tripletlab.cli.main import main

TINY = ["--dataset", "digits", "--epochs", "1", "--steps-per-epoch", "2", "--eval-samples", "60",
        "--embedding-dim", "8", "--model-options", '{"widths": [8]}', "--verbose", "0",
        "--projections", "pca,tsne", "--export-samples", "100"]


def _count_fits(monkeypatch):
    """Counts the PCA and t-SNE runs (scikit-learn's, whoever calls them); the PCA that
    t-SNE's own ``init="pca"`` runs is part of its t-SNE, not counted as a PCA."""
    from sklearn import decomposition, manifold

    calls = {"pca": 0, "tsne": 0}
    inside_tsne = []
    pca_fit, tsne_fit = decomposition.PCA.fit_transform, manifold.TSNE.fit_transform

    def counted_pca(self, *args, **kwargs):
        if not inside_tsne:
            calls["pca"] += 1
        return pca_fit(self, *args, **kwargs)

    def counted_tsne(self, *args, **kwargs):
        calls["tsne"] += 1
        inside_tsne.append(True)
        try:
            return tsne_fit(self, *args, **kwargs)
        finally:
            inside_tsne.pop()

    monkeypatch.setattr(decomposition.PCA, "fit_transform", counted_pca)
    monkeypatch.setattr(manifold.TSNE, "fit_transform", counted_tsne)
    return calls


def _page_body(path):
    # the page says when it was written; the rest must match
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", "<time>", path.read_text(encoding="utf-8"))


def test_train_runs_pca_and_tsne_once_and_the_report_is_unchanged(tmp_path, monkeypatch):
    pytest.importorskip("sklearn")
    calls = _count_fits(monkeypatch)
    folder = tmp_path / "run"
    assert main(["train", "--model-dir", str(folder), *TINY]) == 0
    assert calls == {"pca": 1, "tsne": 1}
    for name in ("plots/pca.png", "plots/tsne.png", "plots/training_curves.png", "report.html"):
        assert (folder / name).is_file(), name
    saved = _page_body(folder / "report.html")
    assert saved.count("<svg") == 2  # the interactive PCA and t-SNE plots

    # the same page, every part computed afresh by the report itself
    from tripletlab.visualization import write_report

    fresh = write_report(folder, tmp_path / "fresh.html", seed=0, tsne_max_points=2000)
    assert calls == {"pca": 2, "tsne": 2}
    assert _page_body(fresh) == saved
