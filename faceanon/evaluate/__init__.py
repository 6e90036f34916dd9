"""Evaluate stage: reads what the pipeline produced and scores it."""
