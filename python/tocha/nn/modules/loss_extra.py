"""[nn] work: loss_extra."""

__all__ = []
