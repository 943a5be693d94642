"""[nn] work: activation_extra."""

__all__ = []
