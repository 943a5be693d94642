"""``nn.functional`` additions of the [conv] work: convolution, pooling, padding, unfold/fold."""

__all__ = []
