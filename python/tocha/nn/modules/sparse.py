"""[nn] work: sparse."""

__all__ = []
