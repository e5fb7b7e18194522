r"""The distance matrix a loss mines on, and the way the loss's gradient leaves it.

Mining chooses entries of a ``[B, B]`` distance matrix without autodiff and knows the
derivative of each anchor's loss sum :math:`S_a` with respect to its row in closed form:
:math:`W_{aj} = \partial S_a / \partial d_{aj}`, given either at a few columns per row (hard,
semi-hard with positive slots) or densely (batch-all, the sort paths). Two ways to turn that into
the gradient of the embeddings, behind one interface (``values``, ``divided_by``, ``attach``,
``attach_columns``):

* :class:`TensorDistances` wraps a differentiable ``[B, B]`` tensor (any distance function, e.g.
  TF Addons' callable ``distance_metric``) and lets autodiff go back through it.
* :class:`EmbeddingDistances` holds a :class:`tripletlab.distances.DistanceGeometry` (the
  canonical distances): with :math:`\partial d_{aj} / \partial r_a = c(d_{aj})(y_a - y_j)`, the
  gradient of anchor :math:`a`'s sum reaches the rows :math:`r` as

  .. math::
      \frac{\partial S_a}{\partial r_a} = \sum_j H_{aj} (y_a - y_j),\quad
      \frac{\partial S_a}{\partial r_j} = -H_{aj} (y_a - y_j),\quad H = W \odot c(d),

  and is attached through a term that is exactly zero but differentiates that way. For a few
  columns per row that costs ``O(B K D)`` and nothing of size ``[B, B]`` is differentiated:
  autodiff through the matrix repeats every elementwise ``[B, B]`` operation of the distances
  backwards (on JAX at B = 1024, batch-hard 1.7 ms this way against 6.4 ms, semi-hard with
  positive slots 16.5 against 26.2 ms). A dense ``W`` goes through the differentiable matrix
  under XLA and ``torch.compile``, where that backward pass fuses (batch-all 15.8 ms against
  22.4 ms through the rows), and through the rows on eager PyTorch, where each backward
  operation of the matrix allocates a ``[B, B]`` buffer (64 MB at B = 4096, more costly than
  the operation): two ``[B, B] x [B, D]`` products built in the backward pass.

Each anchor's term carries only its own gradient, so a ``sample_weight`` per anchor weights it
exactly (the Keras classes return per-anchor values).
"""

from __future__ import annotations

from keras import ops

from tripletlab.distance_names import L2, NORMALIZED_L2, SQUARED_L2
from tripletlab.distances import is_eager_torch
from tripletlab.mining import chunks
from tripletlab.mining.chunks import attach_column_gradient, attach_gradient


class TensorDistances:
    """A differentiable ``[B, B]`` distance tensor; the gradient flows back through it.

    Args:
      distances: the ``[B, B]`` distances, differentiable w.r.t. whatever they came from.
    """

    def __init__(self, distances):
        self._distances = distances
        self.values = ops.stop_gradient(distances)

    def divided_by(self, scale):
        """The distances divided by ``scale`` (a power of two), for mining in a safe range."""
        return TensorDistances(self._distances / scale)

    def attach(self, values, coefficients):
        """``[R]`` ``values`` (per anchor) whose derivative w.r.t. row ``a`` of the distances is
        ``coefficients[a]`` (``[R, B]``); see :func:`tripletlab.mining.attach_gradient`."""
        return attach_gradient(self._distances, values, coefficients)

    def attach_columns(self, values, columns, column_coefficients, coefficients=None):
        """``values`` whose derivative is ``column_coefficients[a, k]`` at ``(a, columns[a, k])``
        (plus ``coefficients`` everywhere when given); see
        :func:`tripletlab.mining.attach_column_gradient`."""
        return attach_column_gradient(self._distances, values, columns, column_coefficients,
                                      coefficients)


class EmbeddingDistances:
    """A canonical distance matrix whose loss gradient goes straight to the embeddings.

    Args:
      geometry: a :class:`tripletlab.distances.DistanceGeometry`.
      values: the matrix to mine on (default ``geometry.matrix``; e.g. clipped where it
        overflowed).
      gradient_scale: the derivative of the mined distances w.r.t. the true ones (``1 / s``
        after :meth:`divided_by` ``s``).
    """

    def __init__(self, geometry, values=None, gradient_scale=1.0, differentiable=None):
        self.geometry = geometry
        self.values = geometry.matrix if values is None else values
        self._gradient_scale = gradient_scale
        self._differentiable = (geometry.differentiable if differentiable is None
                                else differentiable)
        rows = geometry.rows
        # Exactly zero, with the identity as its derivative w.r.t. the rows.
        self._handle = rows - ops.stop_gradient(rows)

    def divided_by(self, scale):
        """The distances divided by ``scale`` (a power of two), for mining in a safe range."""
        differentiable = None if self._differentiable is None else self._differentiable / scale
        return EmbeddingDistances(self.geometry, self.values / scale,
                                  self._gradient_scale / scale, differentiable)

    def _slopes(self, coefficients, distances):
        """``H = W * c(d)`` without gradient, for entries ``distances`` of :attr:`values`.

        After :meth:`divided_by` ``s`` both ``W`` and ``distances`` are in units of ``d / s``:
        ``H`` is multiplied by ``g = 1 / s`` for the chain rule and, where ``c(d) = scale / d``
        (``"L2"``, ``"normalized-L2"``), once more for the true distance ``s * distances`` (in
        two steps: ``g**2`` can underflow).
        """
        if is_eager_torch():
            return self._torch_slopes(coefficients, distances)
        slopes = ops.stop_gradient(coefficients) * self.geometry.slope(distances)
        if isinstance(self._gradient_scale, float) and self._gradient_scale == 1.0:
            return slopes
        slopes = slopes * self._gradient_scale
        if self.geometry.distance in (L2, NORMALIZED_L2):
            slopes = slopes * self._gradient_scale
        return slopes

    def _torch_slopes(self, coefficients, distances):
        """:meth:`_slopes` on eager PyTorch: one new buffer, the rest in place (a ``[B, B]``
        result allocated anew costs more than the operation from B = 2,900; see
        :data:`tripletlab.mining.chunks.TORCH_MAX_ELEMENTS`). Same values as the generic form
        up to the rounding of the products' order."""
        import torch

        with torch.no_grad():
            geometry = self.geometry
            factor = geometry.scale * self._gradient_scale
            if geometry.distance == SQUARED_L2:
                factor = 2.0 * factor
            slopes = coefficients.detach() * factor
            if geometry.distance in (L2, NORMALIZED_L2):
                slopes.div_(distances)  # inf or NaN where d is 0: replaced below
                if not isinstance(self._gradient_scale, float) or self._gradient_scale != 1.0:
                    slopes.mul_(self._gradient_scale)
            return slopes.masked_fill_(distances <= 0, 0.0)

    def attach(self, values, coefficients):
        """``[R]`` ``values`` (``R = B`` anchors) whose derivative w.r.t. row ``a`` of the
        distances is ``coefficients[a]`` (``[R, B]``), sent to the embeddings."""
        return values + self._dense_term(coefficients)

    def attach_columns(self, values, columns, column_coefficients, coefficients=None):
        """``values`` whose derivative is ``column_coefficients[a, k]`` at ``(a, columns[a, k])``,
        repeated columns adding up (plus ``coefficients`` everywhere when given)."""
        if coefficients is not None and self._differentiable is not None:
            # Dense under XLA: the columns join the one backward pass through the matrix.
            return attach_column_gradient(self._differentiable, values, columns,
                                          column_coefficients, coefficients)
        columns = ops.stop_gradient(columns)
        coordinates = self.geometry.coordinates
        slopes = self._slopes(column_coefficients,
                              ops.take_along_axis(self.values, columns, axis=1))
        # differences[a, k] = y_a - y_(columns[a, k]): [R, K, D].
        differences = ops.expand_dims(coordinates, 1) - ops.take(coordinates, columns, axis=0)
        weighted = ops.expand_dims(slopes, 2) * differences
        term = (ops.sum(self._handle * ops.sum(weighted, axis=1), axis=1)
                - ops.sum(ops.take(self._handle, columns, axis=0) * weighted, axis=(1, 2)))
        if coefficients is not None:
            term = term + self._dense_term(coefficients)
        return values + term

    def _dense_term(self, coefficients):
        """A zero per anchor whose gradient is that of ``sum_j W_aj d_aj``.

        Under XLA (JAX, TensorFlow) and ``torch.compile``, through the differentiable matrix:
        its backward pass fuses, and at B = 1024 on JAX batch-all took 15.8 ms this way against
        22.4 ms through the rows (31.8 ms with a custom gradient). On eager PyTorch, where
        every backward operation of the matrix allocates a ``[B, B]`` buffer, through the rows
        in two products built in the backward pass (:func:`_torch_dense_term`).
        """
        if self._differentiable is not None:
            return attach_gradient(self._differentiable, ops.zeros_like(coefficients[:, 0]),
                                   coefficients)
        if not self._handle.requires_grad:
            return ops.zeros_like(coefficients[:, 0])
        return _torch_dense_term(
            self._handle,
            lambda start, stop: self._torch_slopes(coefficients[start:stop],
                                                   self.values[start:stop]),
            self.geometry.coordinates)


def _torch_dense_term(handle, slopes_of, coordinates):
    """:meth:`EmbeddingDistances._dense_term` on eager PyTorch: the value (zero) is not computed
    and the gradient is built only in the backward pass, a block of rows of ``H`` at a time
    (``slopes_of(start, stop)``, 8 MB each), so no ``[B, B]`` buffer of ``H`` is allocated:
    two ``[B, B] x [B, D]`` products in all (plain autodiff of the zero term would also multiply
    ``H`` by the zero handle in the forward pass).
    """
    import torch

    size = coordinates.shape[0]
    block = max(1, chunks.TORCH_MAX_ELEMENTS // max(size, 1))

    class DenseTerm(torch.autograd.Function):
        @staticmethod
        def forward(handle):
            return handle.new_zeros(handle.shape[0])

        @staticmethod
        def setup_context(ctx, inputs, output):
            pass

        @staticmethod
        def backward(ctx, upstream):
            # d/dh_j of sum_a u_a sum_k H_ak (h_a - h_k) . (y_a - y_k):
            #   u_j (rowsum(H)_j y_j - (H y)_j) - (H^T (u y))_j + (H^T u)_j y_j.
            gradient = torch.empty_like(coordinates)
            column_side = torch.zeros_like(coordinates)
            column_weight = coordinates.new_zeros(size)
            for start in range(0, size, block):
                rows = slice(start, start + block)
                slopes = slopes_of(start, start + block)
                weight = upstream[rows, None]
                weighted = weight * coordinates[rows]
                gradient[rows] = (weighted * slopes.sum(dim=1, keepdim=True)
                                  - weight * (slopes @ coordinates))
                column_side += slopes.T @ weighted
                column_weight += slopes.T @ upstream[rows]
            gradient -= column_side
            gradient += column_weight[:, None] * coordinates
            return gradient

    return DenseTerm.apply(handle)


def as_distance_matrix(distances):
    """``distances`` as a distance matrix object: a :class:`TensorDistances` for a plain tensor,
    itself for :class:`TensorDistances` or :class:`EmbeddingDistances`."""
    if isinstance(distances, TensorDistances | EmbeddingDistances):
        return distances
    return TensorDistances(ops.convert_to_tensor(distances))
