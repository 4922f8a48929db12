"""Train a small CNN on scikit-learn's handwritten digits (8x8 images) with the eager front end.

    python examples/train_digits.py [--epochs 8] [--save digits_cnn.safetensors]

80/20 stratified split, seeded; a tqdm progress bar per epoch; prints the test accuracy
(>= 97 %). Importable: `load_data()`, `build_model()`, `train(...)`, `evaluate(...)` are reused by
the end-to-end demo and by graph-mode / mobile examples.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import frontend  # noqa: E402
from frontend import data, models, nn, optim  # noqa: E402


def load_data(seed=0, test_size=0.2):
    """(x_train, y_train, x_test, y_test) as frontend tensors; x is [N, 1, 8, 8] in [0, 1]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=test_size, random_state=seed, stratify=y)
    return (frontend.from_numpy(np.ascontiguousarray(x_train)), frontend.from_numpy(y_train),
            frontend.from_numpy(np.ascontiguousarray(x_test)), frontend.from_numpy(y_test))


def build_model(width=8, seed=0):
    """The small CNN (conv-BN-ReLU x3, one max-pool, global average pool, linear), seeded."""
    frontend.manual_seed(seed)
    return models.SmallCNN(in_channels=1, num_classes=10, width=width)


def evaluate(model, x, y, batch_size=256):
    """Accuracy of `model` on (x, y), in eval mode without autograd."""
    model.eval()
    correct = 0
    with frontend.no_grad():
        for i in range(0, x.shape[0], batch_size):
            pred = model(x[i:i + batch_size]).argmax(1)
            correct += int((pred == y[i:i + batch_size]).sum().item())
    return correct / x.shape[0]


def train(model, x_train, y_train, epochs=8, batch_size=32, lr=3e-3, seed=0, progress=True):
    """Adam + cosine schedule + cross entropy with light label smoothing; returns per-epoch losses."""
    from tqdm import tqdm
    loader = data.DataLoader(data.TensorDataset(x_train, y_train), batch_size=batch_size, shuffle=True,
                             generator=frontend.Generator().manual_seed(seed))
    opt = optim.Adam(model.parameters(), lr=lr)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    history = []
    for epoch in range(epochs):
        model.train()
        total, count = 0.0, 0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", leave=False, disable=not progress)
        for xb, yb in bar:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item() * xb.shape[0]
            count += xb.shape[0]
            bar.set_postfix(loss=f"{total / count:.4f}")
        sched.step()
        history.append(total / count)
    return history


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", help="write the trained state_dict (safetensors) here")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--threads", type=int, default=1,
                        help="kernel threads (1 is fastest for this small model)")
    args = parser.parse_args(argv)
    frontend.set_num_threads(args.threads)
    x_train, y_train, x_test, y_test = load_data(args.seed)
    model = build_model(seed=args.seed)
    start = time.perf_counter()
    history = train(model, x_train, y_train, epochs=args.epochs, seed=args.seed, progress=not args.no_progress)
    elapsed = time.perf_counter() - start
    accuracy = evaluate(model, x_test, y_test)
    print(f"digits: {x_train.shape[0]} train / {x_test.shape[0]} test, {args.epochs} epochs in {elapsed:.1f} s, "
          f"final train loss {history[-1]:.4f}, test accuracy {accuracy * 100:.2f} %")
    if args.save:
        frontend.save(model.state_dict(), args.save)
        print(f"saved {args.save}")
    return accuracy


if __name__ == "__main__":
    main()
