"""Value and gradient of a scalar function, compiled the way Keras' ``fit`` runs a loss.

``jax.jit`` on JAX, ``tf.function(jit_compile=True)`` on TensorFlow (or without XLA, as Keras'
``fit`` runs on a TensorFlow that sees no GPU: ``jit_compile="auto"`` resolves to no XLA there),
eager autograd on PyTorch (Keras' default there). Shared by the benchmark scripts in this
folder.
"""

from __future__ import annotations


def value_and_gradient_step(function, tensorflow_jit=True):
    """Returns ``run(x) -> (value, gradient)`` for the active Keras backend.

    ``tensorflow_jit``: compile with XLA on TensorFlow (``tf.function(jit_compile=...)``).

    ``run`` waits until both results are computed (no asynchronous dispatch is left running), so
    timing a call times the whole forward and backward pass. The first call compiles.
    """
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        step = jax.jit(jax.value_and_grad(function))

        def run(x):
            return jax.block_until_ready(step(x))
    elif backend == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=tensorflow_jit)
        def step(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                value = function(x)
            return value, tape.gradient(value, x)

        def run(x):
            value, gradient = step(x)
            gradient.numpy()
            return value, gradient
    else:
        import torch

        def run(x):
            tensor = x.detach().requires_grad_(True)
            value = function(tensor)
            (gradient,) = torch.autograd.grad(value, tensor)
            return value.detach(), gradient
    return run
