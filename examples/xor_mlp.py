"""XOR with a two-layer perceptron (slides 004): the hidden layer learns a latent representation
that makes the non-linearly-separable XOR problem linearly separable.

    python examples/xor_mlp.py [--epochs 500] [--hidden 4] [--seed 0]
"""

import argparse

import tocha as torch
import tocha.nn as nn


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--epochs", type=int, default=500)
    p.add_argument("--hidden", type=int, default=4)
    p.add_argument("--lr", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    torch.manual_seed(args.seed)
    X = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = torch.tensor([[0.0], [1.0], [1.0], [0.0]])
    model = nn.Sequential(nn.Linear(2, args.hidden), nn.Tanh(), nn.Linear(args.hidden, 1), nn.Sigmoid())
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    loss_fn = nn.BCELoss()
    for epoch in range(1, args.epochs + 1):
        opt.zero_grad()
        loss = loss_fn(model(X), y)
        loss.backward()
        opt.step()
        if epoch % max(1, args.epochs // 5) == 0:
            print(f"epoch {epoch:4d}  loss {loss.item():.4f}")
    with torch.no_grad():
        prob = model(X)
        latent = model[1](model[0](X))
    pred = (prob >= 0.5).float()
    acc = (pred == y).float().mean().item()
    print("inputs  ->  P(y=1)   prediction")
    for xi, pi, yi in zip(X.tolist(), prob.squeeze(1).tolist(), pred.squeeze(1).tolist()):
        print(f"{xi}  ->  {pi:.3f}    {int(yi)}")
    print("latent representation a = tanh(W1 x + b1):")
    print(latent)
    print(f"accuracy {acc:.2f}")
    return acc


if __name__ == "__main__":
    main()
