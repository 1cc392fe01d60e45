"""Quickstart training script for `azml run submit-hyperdrive` (standard library only).

Trains a logistic-regression classifier with L2 penalty on a small synthetic data set by
gradient descent and logs validation accuracy ("Accuracy") after every epoch:
through MLflow when it is installed and azml's tracking endpoint is set (MLFLOW_TRACKING_URI),
else with the lines azureml-core printed when logging offline, which azml also reads.
"""
import argparse
import math
import os
import random
import time


def log_metric(name, value, step):
    if log_metric.mlflow is not None:
        log_metric.mlflow.log_metric(name, value, step=step)
    else:
        print(f"Attempted to log scalar metric {name}:")
        print(value, flush=True)


log_metric.mlflow = None
if os.environ.get("MLFLOW_TRACKING_URI"):
    try:
        import mlflow

        log_metric.mlflow = mlflow
    except ImportError:
        pass


def make_data(n, seed):
    """Two overlapping Gaussian blobs in 5 dimensions, the last 3 mostly noise."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        centre = [1.0, -0.5, 0.0, 0.0, 0.0] if label else [-0.5, 1.0, 0.0, 0.0, 0.0]
        rows.append(([c + rng.gauss(0, 1.2) for c in centre], label))
    return rows


def accuracy(weights, bias, rows):
    hits = 0
    for x, y in rows:
        z = bias + sum(w * v for w, v in zip(weights, x))
        hits += (z > 0) == bool(y)
    return hits / len(rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--penalty", type=float, default=1.0, help="L2 regularization strength")
    ap.add_argument("--learning-rate", type=float, default=0.1)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--epoch-seconds", type=float, default=0.0, help="pretend each epoch takes this long")
    args = ap.parse_args()
    print(f"penalty={args.penalty} learning_rate={args.learning_rate} epochs={args.epochs}", flush=True)

    train, valid = make_data(200, seed=1), make_data(400, seed=2)
    weights, bias = [0.0] * 5, 0.0
    lam = args.penalty / len(train)
    for epoch in range(args.epochs):
        for x, y in train:
            z = bias + sum(w * v for w, v in zip(weights, x))
            p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
            g = p - y
            weights = [w - args.learning_rate * (g * v + lam * w) for w, v in zip(weights, x)]
            bias -= args.learning_rate * g
        log_metric("Accuracy", accuracy(weights, bias, valid), epoch)
        time.sleep(args.epoch_seconds)
    os.makedirs("outputs", exist_ok=True)
    with open("outputs/model.txt", "w") as f:
        f.write(" ".join(f"{w:.6f}" for w in weights + [bias]) + "\n")


if __name__ == "__main__":
    main()
