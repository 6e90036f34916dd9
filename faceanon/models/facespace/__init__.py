"""A face space fitted by this project: shape from 68 landmarks, shape-free texture, and an
identity subspace found with identity labels (see train.py)."""
