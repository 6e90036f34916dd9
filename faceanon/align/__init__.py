"""Landmarks/align stage: 68/5-point landmarks on each face, similarity alignment to a
canonical crop and the inverse warp back into the frame."""
from .align import ARCFACE_TEMPLATE_112, align_face, similarity_transform, warp_back
from .landmarks import Landmarker, landmarks5_from_68

__all__ = ["ARCFACE_TEMPLATE_112", "align_face", "similarity_transform", "warp_back", "Landmarker", "landmarks5_from_68"]
