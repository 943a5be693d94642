"""[nn] work: dropout."""

__all__ = []
