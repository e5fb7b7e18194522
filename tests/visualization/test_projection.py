"""Tests for tripletlab.visualization.project."""

import re
import sys
import types

import numpy as np
import pytest

from tripletlab.visualization import project


def _clusters(num_per_class=20, num_classes=3, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=5.0, size=(num_classes, dim))
    labels = np.repeat(np.arange(num_classes), num_per_class)
    points = centres[labels] + rng.normal(size=(labels.size, dim))
    return points.astype(np.float32), labels


@pytest.fixture(autouse=True)
def _one_thread():
    # t-SNE's OpenMP threads spin-wait: on a shared two-core machine one thread is ~10x faster.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.mark.parametrize("method, options",
                         [("pca", {}), ("tsne", {"max_iter": 250}),
                          pytest.param("umap", {"n_epochs": 50}, marks=pytest.mark.slow)],
                         ids=["pca", "tsne", "umap"])
def test_project_shape_dtype_and_determinism(method, options):
    points, labels = _clusters()
    first = project(points, method, seed=3, **options)
    second = project(points, method, seed=3, **options)
    assert first.shape == (points.shape[0], 2)
    assert first.dtype == np.float32
    assert np.all(np.isfinite(first))
    np.testing.assert_allclose(first, second, rtol=1e-5, atol=1e-5)
    # Well separated clusters stay separated: each point's nearest 2-D neighbour shares its class.
    distances = np.linalg.norm(first[:, None] - first[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    assert np.mean(labels[np.argmin(distances, axis=1)] == labels) > 0.9


def test_pca_matches_scikit_learn():
    from sklearn.decomposition import PCA

    points, _ = _clusters()
    expected = PCA(n_components=2, random_state=0).fit_transform(points)
    np.testing.assert_allclose(project(points, "pca"), expected, rtol=1e-4, atol=1e-4)


def test_options_reach_the_estimator():
    points, _ = _clusters()
    whitened = project(points, "pca", whiten=True)
    np.testing.assert_allclose(whitened.std(axis=0, ddof=1), [1.0, 1.0], rtol=1e-3)


def test_unknown_method_names_the_choices():
    with pytest.raises(ValueError, match=r"method.*'pca', 'tsne', 'umap'.*Did you mean 'tsne'"):
        project(np.zeros((5, 3)), "t-sne")


@pytest.mark.parametrize(
    "embeddings, message",
    [(np.zeros(5), "shape \\[N, D\\]"), (np.zeros((2, 4)), "at least 3 rows"),
     (np.zeros((5, 1)), "2 columns"), (np.array([[0.0, np.nan]] * 4), "finite")],
    ids=["1d", "two-rows", "one-column", "nan"])
def test_bad_embeddings_are_refused(embeddings, message):
    with pytest.raises(ValueError, match=message):
        project(embeddings, "pca")


def test_bad_seed_is_refused():
    with pytest.raises(ValueError, match="seed"):
        project(np.zeros((5, 3)), "pca", seed=-1)


@pytest.mark.parametrize("method, blocked, extra",
                         [("pca", "sklearn.decomposition", "tripletlab[viz]"),
                          ("tsne", "sklearn.manifold", "tripletlab[viz]"),
                          ("umap", "umap", "tripletlab[umap]")], ids=["pca", "tsne", "umap"])
def test_missing_dependency_names_the_extra(monkeypatch, method, blocked, extra):
    monkeypatch.setitem(sys.modules, blocked, None)
    with pytest.raises(ImportError, match=re.escape(f'pip install "{extra}"')):
        project(np.random.default_rng(0).normal(size=(10, 3)), method)


def test_umap_defaults_are_passed(monkeypatch):
    """The UMAP wiring, checked with a stand-in module (the real one takes long to compile)."""
    seen = {}

    class FakeUMAP:
        def __init__(self, **kwargs):
            seen.clear()
            seen.update(kwargs)

        def fit_transform(self, data):
            return np.asarray(data)[:, :2] * 2.0

    monkeypatch.setitem(sys.modules, "umap", types.SimpleNamespace(UMAP=FakeUMAP))
    points, _ = _clusters(num_per_class=3)
    result = project(points, "umap", seed=5, min_dist=0.3)
    assert seen == {"n_components": 2, "random_state": 5, "n_neighbors": 8, "n_jobs": 1,
                    "min_dist": 0.3}
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, points[:, :2] * 2.0)
    project(points, "umap", seed=None, n_neighbors=4)
    assert seen["random_state"] is None and seen["n_neighbors"] == 4 and "n_jobs" not in seen
