"""iam_ondb dataset: IAM On-Line Handwriting Database lines as (dx, dy, end_of_stroke) offsets."""

from .iam_ondb_dataset_builder import Builder

__all__ = ["Builder"]
