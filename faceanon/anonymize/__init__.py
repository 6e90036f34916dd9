"""Anonymize stage: every method is an :class:`Anonymizer` registered by name."""
from . import adversarial, classical, identity, reversible  # noqa: F401  (registration)
from .base import ANONYMIZERS, Anonymizer
from .networks import register as _register_networks
from .region import REGION_SHAPES, region_mask


_register_networks()  # only those whose trained checkpoints ship


def create_anonymizer(name: str, **params) -> Anonymizer:
    return ANONYMIZERS.create(name, **params)


__all__ = ["ANONYMIZERS", "Anonymizer", "create_anonymizer", "REGION_SHAPES", "region_mask"]
