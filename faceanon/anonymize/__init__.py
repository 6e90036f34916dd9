"""Anonymize stage: every method is an :class:`Anonymizer` registered by name."""
import importlib.util

from ..errors import UsageError
from . import adversarial, classical, identity, reversible  # noqa: F401  (registration)
from .base import ANONYMIZERS, Anonymizer
from .networks import register as _register_networks
from .region import REGION_SHAPES, region_mask


_register_networks()  # only those whose trained checkpoints ship


def create_anonymizer(name: str, **params) -> Anonymizer:
    """The method ``name`` with checked parameters; a method that needs PyTorch where it is not
    installed is a one-line error here, not a fallback on every face later."""
    if getattr(ANONYMIZERS.get(name), "needs_torch", False) and importlib.util.find_spec("torch") is None:
        raise UsageError(f"method {name!r} needs PyTorch, which is not installed: pip install 'faceanon[torch]'")
    return ANONYMIZERS.create(name, **params)


__all__ = ["ANONYMIZERS", "Anonymizer", "create_anonymizer", "REGION_SHAPES", "region_mask"]
