#!/usr/bin/env bash
# Runs the whole test suite the way CI does: the linter, then everything once on JAX, then the
# data-parallel tests on 4 simulated JAX devices (the first run started JAX with one), then the
# backend-dependent tests (losses, models, training) again on TensorFlow and PyTorch.
# Usage: bash scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL=2 PYTHONWARNINGS="${PYTHONWARNINGS:-}"
status=0
echo "=== ruff check src tests benchmarks ==="
ruff check src tests benchmarks || status=$?
echo "=== backend jax: full suite ==="
KERAS_BACKEND=jax python -m pytest "$@" || status=$?
echo "=== backend jax on 4 CPU devices: data-parallel tests ==="
JAX_NUM_CPU_DEVICES=4 KERAS_BACKEND=jax python -m pytest tests/distributed "$@" || status=$?
for backend in tensorflow torch; do
  echo "=== backend $backend: backend-dependent tests ==="
  KERAS_BACKEND=$backend TRIPLETLAB_BACKEND_TESTS_ONLY=1 python -m pytest "$@" || status=$?
done
exit $status
