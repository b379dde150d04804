"""The spec's reference in PyTorch as a PyTorch user would speed it up on a CPU: the network and
procedure of torch_reference.py with bfloat16 autocast (--bf16, where the CPU has it),
channels-last memory (--channels-last), batches cut from tensors instead of a DataLoader, and
optionally torch.compile (--compile), for the side-by-side figures of docs/results-and-speed.md.

    .venv-torch/bin/python tools/torch_best.py DATA_DIR --classes 0,1 --bf16 --channels-last
    python -m tools.benchmark --data-dir DATA_DIR --amp --other tools/torch_best.py \\
        --other-python .venv-torch/bin/python --other-args='--bf16 --channels-last'

DATA_DIR holds cifar-10-batches-bin/. Prints one JSON line per epoch: epoch, test_acc, time
(seconds since training started). Like torch_reference.py it imports numpy, torch and that file
only.
"""
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # run as a file, beside torch_reference.py
import torch_reference  # noqa: E402


def build_parser():
    p = torch_reference.new_parser(__doc__)
    torch_reference.add_common_args(p)
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    p.add_argument("--compile", action="store_true", help="torch.compile the network")
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    return p


def main(argv=None):
    a = build_parser().parse_args(argv)
    torch = torch_reference.require_torch("comparison")
    from torch.nn import functional as F

    classes = torch_reference.classes_of(a.classes)
    xtr, ytr, xte, yte = torch_reference.load(a.root, classes)
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    model = torch_reference.build(len(classes) if classes else 10, torch).to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    xtr, ytr = torch.from_numpy(xtr).contiguous(memory_format=fmt), torch.from_numpy(ytr)
    xte, yte = torch.from_numpy(xte).contiguous(memory_format=fmt), torch.from_numpy(yte)
    step_model = torch.compile(model) if a.compile else model
    n, batch = len(ytr), 128
    steps = (n + batch - 1) // batch
    started = time.time()
    for epoch in range(a.epochs):
        model.train()
        order = torch.randperm(n)
        for i in range(steps):
            idx = order[i * batch:(i + 1) * batch]
            x, y = xtr[idx].contiguous(memory_format=fmt), ytr[idx]
            for group in opt.param_groups:  # 0.1 falling linearly to 0 over the run, every step
                group["lr"] = 0.1 * (1 - (epoch + i / steps) / a.epochs)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
                loss = F.cross_entropy(step_model(x).float(), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        correct = 0
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            for j in range(0, len(yte), batch):
                correct += (step_model(xte[j:j + batch]).argmax(-1) == yte[j:j + batch]).sum().item()
        print(json.dumps({"epoch": epoch, "test_acc": correct / len(yte), "time": time.time() - started}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
