"""[conv] work: pooling layers."""

__all__ = []
