"""ptb dataset: Penn Treebank (Mikolov's version), `word` and `char` configs."""

from .ptb_dataset_builder import Builder

__all__ = ["Builder"]
