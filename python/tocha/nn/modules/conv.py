"""[conv] work: conv layers."""

__all__ = []
