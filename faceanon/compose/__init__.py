"""Compose stage: blend anonymized pixels back into the frame."""
from .blend import feathered_alpha, blend

__all__ = ["feathered_alpha", "blend"]
