"""The backbone names are defined once, without Keras (tripletlab.models.backbone_names): the
Keras backbones and the configuration read them there."""

from __future__ import annotations

import os
import subprocess
import sys

from tripletlab.models import backbone_names


def test_the_backbones_are_built_from_the_names():
    from tripletlab.models.backbones import BACKBONES

    assert tuple(BACKBONES) == backbone_names.BACKBONE_MODELS
    assert dict(BACKBONES) == {name: application for name, (application, _)
                               in backbone_names.BACKBONE_APPLICATIONS.items()}


def test_the_names_import_no_keras(tmp_path):
    script = ("import sys, tripletlab.models, tripletlab.models.backbone_names\n"
              "print('keras' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "False"
