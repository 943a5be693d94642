"""``nn.functional`` additions of the [nn] work: activations, losses, normalisation, dropout."""

__all__ = []
