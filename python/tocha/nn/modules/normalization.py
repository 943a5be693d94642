"""[nn] work: normalization."""

__all__ = []
