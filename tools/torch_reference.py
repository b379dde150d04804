"""The spec's reference in PyTorch: the spec'd network and training procedure as the spec's own
PyTorch reference writes them (a plain DataLoader, SGD with momentum 0.9, the learning rate from
0.1 linearly to 0, batch 128, 5 epochs), for the side-by-side figures of docs/results-and-speed.md.

    python -m venv .venv-torch && .venv-torch/bin/pip install -r requirements-torch.txt
    .venv-torch/bin/python tools/torch_reference.py DATA_DIR --classes 0,1       # the spec's task
    python -m tools.benchmark --data-dir DATA_DIR --other tools/torch_reference.py \\
        --other-python .venv-torch/bin/python                                      # side by side

DATA_DIR holds cifar-10-batches-bin/ (the official binary files). Prints one JSON line per epoch:
epoch, test_acc, time (seconds since training started). It imports only numpy and torch (an
optional requirement of its own, requirements-torch.txt) and none of this project, so that it
measures PyTorch alone; its reader of the binary files is the reference's own.
"""
import argparse
import json
import os
import sys
import time

import numpy as np


def read_binary(root):
    """(train images, labels, test images, labels) of the official binary files in
    root/cifar-10-batches-bin: uint8 NCHW images, int64 labels."""
    folder = os.path.join(root, "cifar-10-batches-bin")

    def read(names):
        raw = np.concatenate([np.fromfile(os.path.join(folder, n), dtype=np.uint8).reshape(-1, 3073)
                              for n in names])
        return raw[:, 1:].reshape(-1, 3, 32, 32), raw[:, 0].astype(np.int64)

    return read(["data_batch_%d.bin" % i for i in range(1, 6)]) + read(["test_batch.bin"])


def load(root, classes=None):
    """(train images, labels, test images, labels) of the official binary files, standardised per
    channel with the training images' mean and std, as the reference does."""
    xtr, ytr, xte, yte = read_binary(root)
    if classes is not None:
        mtr, mte = np.isin(ytr, classes), np.isin(yte, classes)
        xtr, ytr, xte, yte = xtr[mtr], ytr[mtr], xte[mte], yte[mte]
        remap = {c: i for i, c in enumerate(classes)}
        ytr, yte = np.array([remap[v] for v in ytr]), np.array([remap[v] for v in yte])
    xtr, xte = xtr.astype(np.float32) / 255.0, xte.astype(np.float32) / 255.0
    mean = xtr.transpose(1, 0, 2, 3).reshape(3, -1).mean(axis=-1).reshape(1, 3, 1, 1)
    std = xtr.transpose(1, 0, 2, 3).reshape(3, -1).std(axis=-1).reshape(1, 3, 1, 1)
    return (xtr - mean) / std, ytr, (xte - mean) / std, yte


def build(num_classes, torch):
    """The spec'd network in PyTorch (BatchNorm with batch statistics only, no affine)."""
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, cin, cout, residual):
            super().__init__()
            self.layers = nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
                                        nn.BatchNorm2d(cout, affine=False, track_running_stats=False),
                                        nn.ReLU())
            self.skip = nn.Conv2d(cin, cout, 1, bias=False) if residual else None

        def forward(self, x):
            y = self.layers(x)
            return y + self.skip(x) if self.skip is not None else y

    class Net(nn.Module):
        def __init__(self, ch=(16, 32, 64, 128), alpha=0.125):
            super().__init__()
            self.layers = nn.Sequential(
                Block(3, ch[0], False),
                Block(ch[0], ch[1], True), nn.MaxPool2d(2),
                Block(ch[1], ch[2], True), nn.MaxPool2d(2),
                Block(ch[2], ch[3], True), nn.AdaptiveMaxPool2d(1), nn.Flatten())
            self.classifier = nn.Linear(ch[3], num_classes, bias=False)
            self.alpha = alpha
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    fan_in = m.weight[0].numel()
                    nn.init.uniform_(m.weight, -(1 / fan_in) ** 0.5, (1 / fan_in) ** 0.5)

        def forward(self, x):
            return self.classifier(self.layers(x)) * self.alpha

    return Net()


def new_parser(doc):
    """The parser of a PyTorch script of this folder (doc: its docstring), with its DATA_DIR."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("root", help="the folder holding cifar-10-batches-bin/")
    return p


def add_common_args(p):
    """The arguments of the spec's task's PyTorch scripts (torch_best.py too)."""
    p.add_argument("--classes", default="0,1", help="'0,1' (the spec's task) or 'all'")
    p.add_argument("--epochs", type=int, default=5, help="epochs to train")
    p.add_argument("--seed", type=int, default=123, help="seeds torch and numpy")


def classes_of(text):
    """--classes as load() takes them: a list of indices, or None for all."""
    return None if text == "all" else [int(c) for c in text.split(",")]


def require_torch(script):
    """torch, or the exit with one line that says how to get it (script: what needs it)."""
    try:
        import torch
    except ImportError as e:
        sys.exit("error: the PyTorch %s needs torch (%s): pip install -r requirements-torch.txt "
                 "in an environment of its own" % (script, e))
    return torch


def build_parser():
    p = new_parser(__doc__)
    add_common_args(p)
    p.add_argument("--cuda", action="store_true", help="train on the GPU")
    p.add_argument("--batch-size", type=int, default=128, help="images per batch")
    return p


def main(argv=None):
    a = build_parser().parse_args(argv)
    torch = require_torch("reference")
    from torch.nn import functional as F
    from torch.utils.data import DataLoader, TensorDataset

    classes = classes_of(a.classes)
    xtr, ytr, xte, yte = load(a.root, classes)
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    dev = "cuda" if a.cuda else "cpu"
    model = build(len(classes) if classes else 10, torch).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    tr = DataLoader(TensorDataset(torch.from_numpy(xtr), torch.from_numpy(ytr)), batch_size=a.batch_size, shuffle=True)
    te = DataLoader(TensorDataset(torch.from_numpy(xte), torch.from_numpy(yte)), batch_size=a.batch_size)
    t = time.time()
    for epoch in range(a.epochs):
        model.train()
        for i, (x, y) in enumerate(tr):
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            progress = (epoch + i / len(tr)) / a.epochs
            for g in opt.param_groups:
                g["lr"] = 0.1 * (1 - progress)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in te:
                correct += (model(x.to(dev)).argmax(-1).cpu() == y).sum().item()
        print(json.dumps({"epoch": epoch, "test_acc": correct / len(yte), "time": time.time() - t}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
