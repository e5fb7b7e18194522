"""What kind of code is being built when a mining function runs: values now (eager) or a
compiled graph, and for TensorFlow which kind of graph.

Mining picks its TensorFlow kernels and its row loop by context: XLA lowers some operations
badly (``tf.searchsorted``, see :mod:`tripletlab.mining.rank`), and XLA cannot compile a loop in
the branch of a differentiated ``tf.cond`` (see :mod:`tripletlab.mining.chunks`). Both are
questions about the graph being traced, answered here. Every function returns ``False`` on
the other backends and in eager TensorFlow.
"""

from __future__ import annotations

import keras


def is_concrete(tensor) -> bool:
    """Whether ``tensor`` holds values now (eager), as opposed to a tracer inside a compiled graph.

    Value checks (non-finite embeddings) run only on concrete tensors; inside ``jit`` the values
    do not exist yet.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.executing_eagerly()
    if backend == "jax":
        import jax

        return not isinstance(tensor, jax.core.Tracer)
    if backend == "torch":
        import torch

        return not torch.compiler.is_compiling()
    return True


def _tensorflow_graph():
    """The TensorFlow graph being built, or ``None`` (another backend, or eager)."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    if tf.executing_eagerly():
        return None
    return tf.compat.v1.get_default_graph()


def in_tensorflow_graph() -> bool:
    """Whether TensorFlow is tracing a graph (``tf.function``, Keras' ``fit``)."""
    return _tensorflow_graph() is not None


def in_tensorflow_xla() -> bool:
    """Whether TensorFlow is tracing code that XLA will compile (``jit_compile=True``)."""
    graph = _tensorflow_graph()
    if graph is None:
        return False
    from tensorflow.python.ops import control_flow_util

    return control_flow_util.GraphOrParentsInXlaContext(graph)


def in_tensorflow_condition_branch() -> bool:
    """Whether TensorFlow is tracing a ``tf.cond`` branch (or a loop inside one) of the function
    being traced.

    Only that function counts: a ``tf.function`` called inside a cond (as Keras' ``fit`` calls
    its step with ``steps_per_execution > 1``) is traced, and differentiated, on its own.
    """
    graph = _tensorflow_graph()
    if graph is None:
        return False
    from tensorflow.python.ops.control_flow_v2_func_graphs import (
        CondBranchFuncGraph,
        ControlFlowFuncGraph,
    )

    while isinstance(graph, ControlFlowFuncGraph):
        if isinstance(graph, CondBranchFuncGraph):
            return True
        graph = graph.outer_graph
    return False
