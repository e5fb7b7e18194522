"""The backbone names are defined once, without Keras (tripletlab.models.backbone_names): the
Keras backbones and the configuration read them there."""

from __future__ import annotations

from conftest import imports_keras
from tripletlab.models import backbone_names


def test_the_backbones_are_built_from_the_names():
    from tripletlab.models.backbones import BACKBONES

    assert tuple(BACKBONES) == backbone_names.BACKBONE_MODELS
    assert dict(BACKBONES) == {name: application for name, (application, _)
                               in backbone_names.BACKBONE_APPLICATIONS.items()}


def test_the_names_import_no_keras(tmp_path):
    assert not imports_keras("tripletlab.models, tripletlab.models.backbone_names", tmp_path)
