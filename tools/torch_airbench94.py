"""airbench94 in PyTorch on a CPU: Keller Jordan's airbench94 (github KellerJordan/cifar10-airbench,
legacy/airbench94.py, MIT licence; arXiv 2404.00498) with CUDA and float16 replaced by float32 or,
with --bf16, bfloat16 autocast, for the side-by-side figures of docs/fast94.md. The network, the
hyperparameters, the whitening, lookahead, alternating flip with 2-pixel translation and
test-time augmentation are airbench94's.

    .venv-torch/bin/python tools/torch_airbench94.py DATA_DIR --bf16
    python -m tools.benchmark --data-dir DATA_DIR --recipe fast94 --amp-only --epochs 9.9 \\
        --other tools/torch_airbench94.py --other-python .venv-torch/bin/python --other-args=--bf16

DATA_DIR holds cifar-10-batches-bin/. Prints one JSON line per epoch: epoch, train_loss and
train_acc (of the epoch's last batch, as airbench94 reports them), test_acc, time (seconds of
training so far, evaluation left out, as airbench94 counts them); the last line adds
tta_test_acc. Like torch_reference.py it imports numpy, torch and that file only.
"""
import json
import os
import sys
import time
from math import ceil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # run as a file, beside torch_reference.py
import torch_reference  # noqa: E402

# airbench94's hyperparameters: lr and weight decay per 1024 images, decoupled from momentum
HYP = dict(epochs=9.9, batch_size=1024, lr=11.5, momentum=0.85, weight_decay=0.0153, bias_scaler=64.0,
           label_smoothing=0.2, whiten_bias_epochs=3, translate=2, widths=(64, 256, 256), bn_momentum=0.6,
           scaling_factor=1 / 9, tta_level=2)
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)  # airbench94's CIFAR-10 statistics


# ----------------------------------------------------------------------------------------------
# The network

def build(torch):
    nn = torch.nn

    class BatchNorm(nn.BatchNorm2d):
        def __init__(self, channels):
            super().__init__(channels, eps=1e-12, momentum=1 - HYP["bn_momentum"])
            self.weight.requires_grad = False

    class Conv(nn.Conv2d):
        def __init__(self, cin, cout, kernel_size=3, padding="same", bias=False):
            super().__init__(cin, cout, kernel_size=kernel_size, padding=padding, bias=bias)

        def reset_parameters(self):
            super().reset_parameters()
            if self.bias is not None:
                self.bias.data.zero_()
            w = self.weight.data
            torch.nn.init.dirac_(w[:w.size(1)])

    class ConvGroup(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.conv1, self.pool, self.norm1 = Conv(cin, cout), nn.MaxPool2d(2), BatchNorm(cout)
            self.conv2, self.norm2, self.activ = Conv(cout, cout), BatchNorm(cout), nn.GELU()

        def forward(self, x):
            x = self.activ(self.norm1(self.pool(self.conv1(x))))
            return self.activ(self.norm2(self.conv2(x)))

    class Mul(nn.Module):
        def forward(self, x):
            return x * HYP["scaling_factor"]

    widths, whiten_width = HYP["widths"], 2 * 3 * 2 ** 2
    net = nn.Sequential(Conv(3, whiten_width, 2, padding=0, bias=True), nn.GELU(),
                        ConvGroup(whiten_width, widths[0]), ConvGroup(widths[0], widths[1]),
                        ConvGroup(widths[1], widths[2]), nn.MaxPool2d(3), nn.Flatten(),
                        nn.Linear(widths[2], 10, bias=False), Mul())
    net[0].weight.requires_grad = False
    return net.to(memory_format=torch.channels_last)


def init_whitening(torch, layer, images, eps=5e-4):
    """The first layer's filters: the eigenvectors of the 2x2 patches' covariance, scaled by
    1/sqrt(eigenvalue), and the same negated."""
    c, (h, w) = images.shape[1], layer.weight.shape[2:]
    patches = images.unfold(2, h, 1).unfold(3, w, 1).transpose(1, 3).reshape(-1, c, h, w).float()
    flat = patches.view(len(patches), -1)
    eigenvalues, eigenvectors = torch.linalg.eigh(flat.T @ flat / len(flat), UPLO="U")
    eigenvectors = eigenvectors.T.reshape(c * h * w, c, h, w).flip(0)
    scaled = eigenvectors / torch.sqrt(eigenvalues.flip(0).view(-1, 1, 1, 1) + eps)
    layer.weight.data[:] = torch.cat((scaled, -scaled))


# ----------------------------------------------------------------------------------------------
# The data: alternating flip and translation

def crop(torch, padded, size):
    """Each image cut from its padded copy at a random offset of up to the padding."""
    r = (padded.size(-1) - size) // 2
    shifts = torch.randint(-r, r + 1, size=(len(padded), 2))
    out = torch.empty((len(padded), 3, size, size), dtype=padded.dtype)
    for sy in range(-r, r + 1):
        for sx in range(-r, r + 1):
            mask = (shifts[:, 0] == sy) & (shifts[:, 1] == sx)
            out[mask] = padded[mask, :, r + sy:r + sy + size, r + sx:r + sx + size]
    return out


def epoch_images(torch, padded, epoch):
    """An epoch's training images: translated anew, and every other epoch all mirrored."""
    images = crop(torch, padded, 32)
    return images.flip(-1) if epoch % 2 == 1 else images


# ----------------------------------------------------------------------------------------------
# Evaluation

def logits_of(torch, net, images, tta_level, precision):
    F = torch.nn.functional

    def mirror(x):
        return 0.5 * net(x) + 0.5 * net(x.flip(-1))

    def mirror_translate(x):
        padded = F.pad(x, (1,) * 4, "reflect")
        shifted = torch.stack([mirror(padded[:, :, a:a + 32, a:a + 32].contiguous(memory_format=torch.channels_last))
                               for a in (0, 2)]).mean(0)
        return 0.5 * mirror(x) + 0.5 * shifted

    infer = [net, mirror, mirror_translate][tta_level]
    net.eval()
    with torch.no_grad(), precision():
        return torch.cat([infer(x.contiguous(memory_format=torch.channels_last)).float() for x in images.split(2000)])


def accuracy(torch, net, images, labels, tta_level, precision):
    return (logits_of(torch, net, images, tta_level, precision).argmax(1) == labels).float().mean().item()


# ----------------------------------------------------------------------------------------------
# Training

def train(torch, args, data):
    """Trains as airbench94 does, printing a JSON line per epoch."""
    import contextlib

    F = torch.nn.functional
    train_images, train_labels, test_images, test_labels = data
    precision = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if args.bf16 else contextlib.nullcontext
    batch_size, momentum = HYP["batch_size"], HYP["momentum"]
    kilostep_scale = 1024 * (1 + 1 / (1 - momentum))
    lr = HYP["lr"] / kilostep_scale  # per image, undoing the momentum's gain
    wd = HYP["weight_decay"] * batch_size / kilostep_scale
    lr_biases = lr * HYP["bias_scaler"]
    steps_per_epoch = len(train_images) // batch_size
    total_steps = ceil(steps_per_epoch * args.epochs)

    net = build(torch)
    norm_biases = [p for k, p in net.named_parameters() if "norm" in k and p.requires_grad]
    others = [p for k, p in net.named_parameters() if "norm" not in k and p.requires_grad]
    optimizer = torch.optim.SGD([dict(params=norm_biases, lr=lr_biases, weight_decay=wd / lr_biases),
                                 dict(params=others, lr=lr, weight_decay=wd / lr)], momentum=momentum, nesterov=True)
    warmup = int(total_steps * 0.23)

    def schedule(step):
        if step < warmup:
            return 0.2 + 0.8 * step / warmup
        return 1.0 - 0.93 * (step - warmup) / (total_steps - warmup)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    alpha = 0.95 ** 5 * (torch.arange(total_steps + 1) / total_steps) ** 3
    average = {k: v.clone() for k, v in net.state_dict().items()}  # lookahead

    def look_ahead(decay):
        for kept, param in zip(average.values(), net.state_dict().values()):
            if param.dtype == torch.float:
                kept.lerp_(param, 1 - decay)
                param.copy_(kept)

    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=HYP["label_smoothing"], reduction="none")
    start = time.perf_counter()
    init_whitening(torch, net[0], train_images[:5000])
    flipped = torch.where((torch.rand(len(train_images)) < 0.5).view(-1, 1, 1, 1),
                          train_images.flip(-1), train_images)
    padded = F.pad(flipped, (HYP["translate"],) * 4, "reflect")
    seconds, step = time.perf_counter() - start, 0
    for epoch in range(ceil(args.epochs)):
        start = time.perf_counter()
        net[0].bias.requires_grad = epoch < HYP["whiten_bias_epochs"]
        net.train()
        images = epoch_images(torch, padded, epoch)
        order = torch.randperm(len(images))
        for i in range(steps_per_epoch):
            batch = order[i * batch_size:(i + 1) * batch_size]
            inputs, labels = images[batch].contiguous(memory_format=torch.channels_last), train_labels[batch]
            with precision():
                outputs = net(inputs)
                loss = loss_fn(outputs.float(), labels).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            if step % 5 == 0:
                look_ahead(alpha[step].item())
            if step >= total_steps:
                look_ahead(1.0)
                break
        seconds += time.perf_counter() - start
        record = {"epoch": epoch, "train_loss": loss.item() / batch_size,
                  "train_acc": (outputs.detach().argmax(1) == labels).float().mean().item(),
                  "test_acc": accuracy(torch, net, test_images, test_labels, 0, precision)}
        if step >= total_steps:
            start = time.perf_counter()
            record["tta_test_acc"] = accuracy(torch, net, test_images, test_labels, HYP["tta_level"], precision)
            seconds += time.perf_counter() - start
        print(json.dumps(dict(record, time=seconds)), flush=True)


def build_parser():
    p = torch_reference.new_parser(__doc__)
    p.add_argument("--epochs", type=float, default=HYP["epochs"], help="epochs to train (a fraction ends within one)")
    p.add_argument("--seed", type=int, default=0, help="seeds torch")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    torch = torch_reference.require_torch("airbench94")
    torch.manual_seed(args.seed)
    xtr, ytr, xte, yte = torch_reference.read_binary(args.root)
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)

    def normalised(images):
        return (torch.from_numpy(images).float() / 255 - mean) / std

    train(torch, args, (normalised(xtr), torch.from_numpy(ytr), normalised(xte), torch.from_numpy(yte)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
