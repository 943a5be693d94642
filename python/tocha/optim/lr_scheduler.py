"""``tocha.optim.lr_scheduler`` — the [nn] work fills this in."""
