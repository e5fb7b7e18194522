"""Pictures of embeddings: projections, plots, the TensorBoard projector, live PCA, reports,
and the pictures of an experiment folder (:func:`write_plots`).

Importing this package needs only NumPy and Keras; matplotlib, scikit-learn, umap-learn and
Pillow are imported by the functions that use them (``pip install "tripletlab[viz]"``, and
``"tripletlab[umap]"`` for UMAP).

Example:
  >>> from tripletlab import visualization as viz
  >>> points = viz.project(embeddings, "tsne")  # doctest: +SKIP
  >>> viz.scatter_plot(points, labels, "tsne.png", title="t-SNE")  # doctest: +SKIP
"""

from tripletlab.visualization.experiment_plots import available_projections, write_plots
from tripletlab.visualization.live import LivePCA
from tripletlab.visualization.plot import (
    neighbor_grid,
    scatter_plot,
    training_curves,
    triplet_plot,
)
from tripletlab.visualization.project import project
from tripletlab.visualization.projector import ProjectorExport, export_projector
from tripletlab.visualization.report import write_report

__all__ = [
    "LivePCA",
    "ProjectorExport",
    "available_projections",
    "export_projector",
    "neighbor_grid",
    "project",
    "scatter_plot",
    "training_curves",
    "triplet_plot",
    "write_plots",
    "write_report",
]
