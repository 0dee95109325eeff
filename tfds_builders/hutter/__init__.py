"""hutter dataset: enwik8 (Hutter prize), configs `paper`, `standard` and `prefix`."""

from .hutter_dataset_builder import Builder

__all__ = ["Builder"]
