"""The spec material's Inception networks, for 28x28 crops of CIFAR images.

    SubInceptionRReLU(100)   the CIFAR-100 network: Inception-A/B modules, BatchNorm, RReLU
    InceptionBNSmall(10)     MXNet's small Inception-BN for CIFAR-10 (inception-bn-28-small)

Both stack modules whose branches are concatenated along the channels, end in a global average
pool and a fully connected output, and keep the children `features` and `output`. Widths and the
order of modules are data (the tables below), each module a HybridBlock built from them.

Stride-2 max pools round their output size up (MXNet's pooling_convention='full'), as the
original symbols did under MXNet's old default, so that a 28x28 map pools to 14x14 like the
padded stride-2 convolutions beside it.
"""
from mxnet.gluon import nn

# RReLU's slopes for negative inputs: drawn from U(lower, upper) per element in training, their
# mean in evaluation (MXNet's LeakyReLU defaults).
RRELU_LOWER, RRELU_UPPER = 0.125, 0.334

# ----------------------------------------------------------------------------------------------
# Building blocks


class ConvFactory(nn.HybridSequential):
    """Conv -> BatchNorm -> activation ('rrelu' or 'relu'), the factory of both symbols.

    The BatchNorm is MXNet's symbol default that they used: gamma fixed at 1 (no learnable
    scale), eps 1e-3, running statistics for evaluation."""

    def __init__(self, channels, kernel, stride=1, pad=0, act="relu", **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.add(nn.Conv2D(channels, kernel, strides=stride, padding=pad),
                     nn.BatchNorm(scale=False, epsilon=1e-3),
                     RReLU() if act == "rrelu" else nn.Activation("relu"))


class RReLU(nn.HybridBlock):
    """Randomized leaky ReLU: for x < 0, x times a slope drawn from U(lower, upper) per element
    in training, times their mean in evaluation.

    MXNet's own LeakyReLU(act_type='rrelu') crashes in training on the CPU (a segfault, or
    "Check failed: req.type == ResourceRequest::kTempSpace": apache/mxnet#14447, open through
    1.9.1), so it is composed here from operators that work. A hybridized graph is traced once
    for both modes, so the mode must come from an operator that reads it at run time: Dropout
    with p = 1/2 turns a one into 0 or 2 in training and leaves it 1 in evaluation, and
    (that - 1)^2 is therefore exactly 1 in training and 0 in evaluation.
    """

    def hybrid_forward(self, F, x):
        one = F.ones_like(F.slice_axis(F.reshape(x, shape=(-1,)), axis=0, begin=0, end=1))
        training = F.square(F.Dropout(one, p=0.5) - 1)
        mean = (RRELU_LOWER + RRELU_UPPER) / 2
        noise = F.random.uniform_like(x, low=RRELU_LOWER - mean, high=RRELU_UPPER - mean)
        slope = F.broadcast_add(F.broadcast_mul(noise, training), F.ones_like(one) * mean)
        # x < 0 rather than x >= 0: the same choice, and an operator that has an ONNX converter.
        return F.where(x < 0, x * slope, x)


class Branches(nn.HybridBlock):
    """Runs every branch on the input and concatenates their outputs along the channels."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.branches = nn.HybridSequential()

    def add(self, *layers):
        branch = nn.HybridSequential()
        branch.add(*layers)
        self.branches.add(branch)

    def hybrid_forward(self, F, x):
        return F.concat(*[branch(x) for branch in self.branches], dim=1)


def _max_pool_down():
    return nn.MaxPool2D(pool_size=3, strides=2, ceil_mode=True)  # ceil_mode: 'full' convention


# ----------------------------------------------------------------------------------------------
# Sub-Inception with RReLU (CIFAR-100)

def inception_a(num_1x1, num_3x3red, num_3x3, num_d3x3red, num_d3x3, pool, proj, act="rrelu"):
    """1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 -> 3x3 | 3x3 pool (stride 1) -> 1x1 projection."""
    block = Branches()
    with block.name_scope():
        block.add(ConvFactory(num_1x1, 1, act=act))
        block.add(ConvFactory(num_3x3red, 1, act=act), ConvFactory(num_3x3, 3, pad=1, act=act))
        block.add(ConvFactory(num_d3x3red, 1, act=act), ConvFactory(num_d3x3, 3, pad=1, act=act),
                  ConvFactory(num_d3x3, 3, pad=1, act=act))
        pooling = (nn.AvgPool2D(3, strides=1, padding=1, count_include_pad=True) if pool == "avg"
                   else nn.MaxPool2D(3, strides=1, padding=1))
        block.add(pooling, ConvFactory(proj, 1, act=act))
    return block


def inception_b(num_3x3red, num_3x3, num_d3x3red, num_d3x3, act="rrelu"):
    """Halves the size: 1x1 -> 3x3/2 | 1x1 -> 3x3 -> 3x3/2 | 3x3/2 max pool."""
    block = Branches()
    with block.name_scope():
        block.add(ConvFactory(num_3x3red, 1, act=act), ConvFactory(num_3x3, 3, stride=2, pad=1, act=act))
        block.add(ConvFactory(num_d3x3red, 1, act=act), ConvFactory(num_d3x3, 3, pad=1, act=act),
                  ConvFactory(num_d3x3, 3, stride=2, pad=1, act=act))
        block.add(_max_pool_down())
    return block


# (module, filter counts) in order: Inception-A takes 1x1, 3x3 reduce, 3x3, double-3x3 reduce,
# double 3x3, pool type, projection; Inception-B takes 3x3 reduce, 3x3, double-3x3 reduce,
# double 3x3.
SUB_INCEPTION_STAGES = (
    ("3a", inception_a, (64, 64, 64, 64, 96, "avg", 32)),
    ("3b", inception_a, (64, 64, 96, 64, 96, "avg", 64)),
    ("3c", inception_b, (128, 160, 64, 96)),
    ("4a", inception_a, (224, 64, 96, 96, 128, "avg", 128)),
    ("4b", inception_a, (192, 96, 128, 96, 128, "avg", 128)),
    ("4c", inception_a, (160, 128, 160, 128, 160, "avg", 128)),
    ("4d", inception_a, (96, 128, 192, 160, 192, "avg", 128)),
    ("4e", inception_b, (128, 192, 192, 256)),
    ("5a", inception_a, (352, 192, 320, 160, 224, "avg", 128)),
    ("5b", inception_a, (352, 192, 320, 192, 224, "max", 128)),
)


class SubInceptionRReLU(nn.HybridBlock):
    """The spec material's CIFAR-100 network: Inception stages 3a-5b directly on the 28x28
    input, global average pooling, a fully connected output."""

    def __init__(self, num_classes=100, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential()
            for _, module, filters in SUB_INCEPTION_STAGES:
                self.features.add(module(*filters))
            self.features.add(nn.GlobalAvgPool2D(), nn.Flatten())
            self.output = nn.Dense(num_classes)

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


# ----------------------------------------------------------------------------------------------
# MXNet's small Inception-BN (CIFAR-10, 28x28)

def simple_module(ch_1x1, ch_3x3):
    """1x1 | 3x3, concatenated."""
    block = Branches()
    with block.name_scope():
        block.add(ConvFactory(ch_1x1, 1))
        block.add(ConvFactory(ch_3x3, 3, pad=1))
    return block


def downsample_module(ch_3x3):
    """3x3/2 | 3x3/2 max pool, concatenated."""
    block = Branches()
    with block.name_scope():
        block.add(ConvFactory(ch_3x3, 3, stride=2, pad=1))
        block.add(_max_pool_down())
    return block


SMALL_INCEPTION_STAGES = (
    ("3a", simple_module, (32, 32)),
    ("3b", simple_module, (32, 48)),
    ("3c", downsample_module, (80,)),
    ("4a", simple_module, (112, 48)),
    ("4b", simple_module, (96, 64)),
    ("4c", simple_module, (80, 80)),
    ("4d", simple_module, (48, 96)),
    ("4e", downsample_module, (96,)),
    ("5a", simple_module, (176, 160)),
    ("5b", simple_module, (176, 160)),
)


class InceptionBNSmall(nn.HybridBlock):
    """A 3x3 conv of 96 filters, the modules above, global average pooling, a fully connected
    output: the network of MXNet's 842 images/s on one GTX 980."""

    def __init__(self, num_classes=10, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential()
            self.features.add(ConvFactory(96, 3, pad=1))
            for _, module, filters in SMALL_INCEPTION_STAGES:
                self.features.add(module(*filters))
            self.features.add(nn.GlobalAvgPool2D(), nn.Flatten())
            self.output = nn.Dense(num_classes)

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))
