"""Train a LeNet-style CNN with fastconv.nn on scikit-learn's handwritten
digits (load_digits: 1797 images of 8x8 pixels, 10 classes), check its
accuracy on a held-out quarter, fuse it for inference and time the fused
model against the unfused one.

    pip install scikit-learn        # the examples' extra: pip install ".[examples]"
    python examples/train_digits.py [--epochs 12] [--seed 0]

The network: conv(1->16, 3x3) -> BN -> ReLU -> max-pool 2  (16 x 4 x 4)
             conv(16->32, 3x3) -> BN -> ReLU -> max-pool 2 (32 x 2 x 2)
             flatten -> linear(128 -> 10)
"""
import argparse
import time

import numpy as np

from fastconv import nn


def load_data(split_seed=0):
    """(x_train, y_train, x_test, y_test): images as N x 1 x 8 x 8 float32,
    standardised with the training set's mean and deviation; a stratified
    split holding out a quarter of the images."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.images.astype(np.float32)[:, None, :, :]
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=0.25, stratify=digits.target,
        random_state=split_seed)
    mean, std = x_train.mean(), x_train.std()
    return ((x_train - mean) / std, y_train.astype(np.int64),
            (x_test - mean) / std, y_test.astype(np.int64))


def build_model(rng):
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, rng=rng), nn.BatchNorm2d(16), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, rng=rng), nn.BatchNorm2d(32), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 2 * 2, 10, rng=rng))


def train(model, x, y, epochs, rng, batch_size=32, lr=0.05, log=print):
    """SGD with momentum and weight decay; the learning rate follows a
    cosine from lr down to 0 over all the steps."""
    opt = nn.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    steps_per_epoch = -(-len(x) // batch_size)
    total, step = epochs * steps_per_epoch, 0
    model.train()
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        losses = []
        for start in range(0, len(x), batch_size):
            batch = order[start:start + batch_size]
            opt.lr = lr * 0.5 * (1 + np.cos(np.pi * step / total))
            opt.zero_grad()
            loss, grad = nn.cross_entropy(model(x[batch]), y[batch])
            model.backward(grad)
            opt.step()
            losses.append(loss)
            step += 1
        log(f"epoch {epoch + 1:2d}/{epochs}: mean training loss {np.mean(losses):.4f}")
    return model.eval()


def predict(model, x, batch_size=256):
    return np.concatenate([model(x[i:i + batch_size]).argmax(axis=1)
                           for i in range(0, len(x), batch_size)])


def time_pair(f, g, repeats=25, warmup=3):
    """Median seconds of f() and g(), measured interleaved (f g f g ...)."""
    for _ in range(warmup):
        f(), g()
    tf, tg = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        t1 = time.perf_counter()
        g()
        t2 = time.perf_counter()
        tf.append(t1 - t0)
        tg.append(t2 - t1)
    return float(np.median(tf)), float(np.median(tg))


def stage_timings(model, fused, x, repeats=25):
    """For each conv -> BN -> ReLU stage of the Sequential `model` that
    fuse() turned into one FusedConv2dBN: (first, last child index, unfused
    seconds, fused seconds), timed interleaved on that stage's own input."""
    layers, fused_layers = list(model), list(fused)
    out, h, i = [], x, 0
    while i < len(layers):
        if not isinstance(fused_layers[i], nn.FusedConv2dBN):
            h = layers[i](h)
            i += 1
            continue
        j = i + 1
        while j < len(layers) and isinstance(fused_layers[j], nn.Identity):
            j += 1

        def unfused(h=h, stage=layers[i:j]):
            for layer in stage:
                h = layer(h)
            return h

        t_unfused, t_fused = time_pair(unfused, lambda h=h, f=fused_layers[i]: f(h),
                                       repeats=repeats)
        out.append((i, j - 1, t_unfused, t_fused))
        h, i = unfused(), j
    return out


def main(epochs=12, seed=0, verbose=True, timing_repeats=25):
    """Train, evaluate, fuse, time.  Returns a dict with the held-out
    accuracy of the model and of its fused copy, the batches' timings and
    the training time."""
    log = print if verbose else (lambda *a, **k: None)
    x_train, y_train, x_test, y_test = load_data()
    rng = np.random.default_rng(seed)
    model = build_model(rng)
    log(f"{len(x_train)} training and {len(x_test)} held-out images; model:\n{model}")

    t0 = time.perf_counter()
    train(model, x_train, y_train, epochs, rng, log=log)
    train_seconds = time.perf_counter() - t0
    accuracy = float(np.mean(predict(model, x_test) == y_test))
    log(f"trained in {train_seconds:.1f} s; held-out accuracy {accuracy:.2%}")

    fused = nn.fuse(model)
    fused_pred = predict(fused, x_test)
    fused_accuracy = float(np.mean(fused_pred == y_test))
    agree = float(np.mean(fused_pred == predict(model, x_test)))
    log(f"fused model: accuracy {fused_accuracy:.2%}, same prediction as the "
        f"unfused model on {agree:.2%} of the images\n{fused}")

    timings = {}
    for name, batch in (("batch of 1", x_test[:1]), (f"batch of {len(x_test)}", x_test)):
        t_unfused, t_fused = time_pair(lambda: model(batch), lambda: fused(batch),
                                       repeats=timing_repeats)
        timings[name] = (t_unfused, t_fused)
        log(f"inference, {name}: unfused {t_unfused * 1e3:.3f} ms, fused "
            f"{t_fused * 1e3:.3f} ms ({t_unfused / t_fused:.2f}x)")
    stages = stage_timings(model, fused, x_test, repeats=timing_repeats)
    for first, last, t_unfused, t_fused in stages:
        log(f"  layers {first}-{last} (conv, BN, ReLU) alone, batch of {len(x_test)}: "
            f"unfused {t_unfused * 1e3:.3f} ms, fused {t_fused * 1e3:.3f} ms "
            f"({t_unfused / t_fused:.2f}x)")
    return dict(accuracy=accuracy, fused_accuracy=fused_accuracy, agreement=agree,
                train_seconds=train_seconds, timings=timings, stage_timings=stages,
                model=model, fused=fused)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(epochs=args.epochs, seed=args.seed)
