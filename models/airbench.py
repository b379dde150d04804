"""airbench94's network (Keller Jordan, "94% on CIFAR-10 in 3.29 seconds on a single GPU",
arXiv 2404.00498; github KellerJordan/cifar10-airbench, legacy/airbench94.py), in Gluon.

    Whitening(3 -> 24, 2x2, no padding)   frozen weights from the training patches; a bias
    GELU
    ConvGroup(24 -> 64)                   each: Conv3x3, MaxPool 2x2, BN, GELU, Conv3x3, BN, GELU
    ConvGroup(64 -> 256)
    ConvGroup(256 -> 256)
    MaxPool 3x3                           (3x3 -> 1x1)
    Dense(256 -> classes, no bias)
    Scale(1/9)                            applied to the logits

- Whitening: the 2x2 patches of the training images, their covariance's eigenvectors divided by
  the square root of their eigenvalues (plus 5e-4), and the same filters negated: 24 filters that
  make the patches' covariance the identity. Its weights never train (grad_req null); its bias
  trains for the recipe's first epochs only.
- Convolutions: 3x3, "same" padding, no bias, weights ~ Uniform(+-1/sqrt(fan_in)) (PyTorch's
  default), then identity (Dirac) on the first `in_channels` outputs, so that at the start each
  convolution passes its input through on those channels.
- BatchNorm: epsilon 1e-12, running statistics with momentum 0.6 (used in evaluation), scale
  fixed at 1 (grad_req null) and a learnable shift, which the recipe trains at 64 times the
  learning rate.

The whitening layer computes 32 channels: its 24 filters and 8 zero filters whose bias
`zero_padding()` puts back to 0 after every update, so that they always output GELU(0) = 0; the
first group's convolution takes the 32 (its weights on the 8 meet only zeros): the same function
as airbench94's, initialised as its. oneDNN's bfloat16 convolutions take channels in blocks of
16; with 24, the first group's convolution (the largest, 31x31) falls back to oneDNN's slower
gemm path (docs/networks-and-recipes.md gives the step times of both).
"""
import mxnet as mx
import numpy as np
from mxnet.gluon import nn

from .spec_resnet import FAN_IN_UNIFORM, Scale

WIDTHS = (64, 256, 256)  # output channels of the three conv groups
WHITENING_KERNEL = 2  # pixels per side of the whitening patches
WHITENING_FILTERS = 2 * 3 * WHITENING_KERNEL ** 2  # the eigenvectors and their negatives
WHITENING_CHANNELS = 32  # computed: the filters, then zeros up to oneDNN's 16-channel blocks
WHITENING_EPSILON = 5e-4  # added to the eigenvalues
BN_EPSILON = 1e-12
BN_MOMENTUM = 0.6  # running = 0.6 * running + 0.4 * batch
LOGIT_SCALE = 1 / 9


class Dirac(mx.init.Initializer):
    """Uniform(+-1/sqrt(fan_in)) (PyTorch's default, which airbench94 keeps; drawn from MXNet's
    seeded generator), then identity on the first `inputs` output channels. inputs: the input
    channels that carry the network's values (None: all), which also give the fan-in."""

    def __init__(self, inputs=None):
        super().__init__(inputs=inputs)
        self.inputs = inputs

    def _init_weight(self, name, arr):
        cout, cin, kh, kw = arr.shape
        cin = self.inputs or cin
        bound = 1 / np.sqrt(cin * kh * kw)
        values = mx.nd.random.uniform(-bound, bound, shape=arr.shape).asnumpy()
        values[:cin] = 0
        values[np.arange(cin), np.arange(cin), kh // 2, kw // 2] = 1
        arr[:] = values


def _conv(channels, in_channels, inputs=None):
    return nn.Conv2D(channels, 3, padding=1, use_bias=False, in_channels=in_channels,
                     weight_initializer=Dirac(inputs))


def _norm(channels):
    norm = nn.BatchNorm(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, in_channels=channels)
    norm.gamma.grad_req = "null"  # a fixed scale of 1; only the shift learns
    return norm


class ConvGroup(nn.HybridBlock):
    """Conv3x3, MaxPool 2x2, BN, GELU, Conv3x3, BN, GELU."""

    def __init__(self, channels, in_channels, inputs=None, **kwargs):
        """inputs: how many of the in_channels carry values (the others are always 0)."""
        super().__init__(**kwargs)
        self.conv1, self.pool, self.norm1 = _conv(channels, in_channels, inputs), nn.MaxPool2D(2), _norm(channels)
        self.conv2, self.norm2, self.activation = _conv(channels, channels), _norm(channels), nn.GELU()

    def hybrid_forward(self, F, x):
        x = self.activation(self.norm1(self.pool(self.conv1(x))))
        return self.activation(self.norm2(self.conv2(x)))


class Airbench94(nn.HybridBlock):
    """airbench94's network: `features` (whitening, GELU, three ConvGroups, the last pool) and
    `output` (Dense, Scale(1/9))."""

    def __init__(self, num_classes=10, **kwargs):
        super().__init__(**kwargs)
        # Its parameters' names count from 0 within the instance, so that they sort alike in any
        # build (gluon.Trainer orders its parameters, and the optimizer state a checkpoint keeps,
        # by name).
        with self.name_scope():
            self.features = nn.HybridSequential()
            self.whitening = nn.Conv2D(WHITENING_CHANNELS, WHITENING_KERNEL, in_channels=3, use_bias=True,
                                       weight_initializer=mx.init.Zero())
            self.whitening.weight.grad_req = "null"  # set from the data by whiten(), never trained
            self.features.add(self.whitening, nn.GELU())
            in_channels, inputs = WHITENING_CHANNELS, WHITENING_FILTERS
            for width in WIDTHS:
                self.features.add(ConvGroup(width, in_channels, inputs))
                in_channels, inputs = width, None
            self.features.add(nn.MaxPool2D(3), nn.Flatten())
            self.output = nn.HybridSequential()
            self.output.add(nn.Dense(num_classes, use_bias=False, in_units=in_channels,
                                     weight_initializer=FAN_IN_UNIFORM),
                            Scale(LOGIT_SCALE))

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))

    def whiten(self, images):
        """Sets the whitening weights from images (normalised float32 NCHW, numpy), as
        airbench94's init_whitening does, and its bias to 0."""
        filters = np.zeros((WHITENING_CHANNELS, 3, WHITENING_KERNEL, WHITENING_KERNEL), dtype=np.float32)
        filters[:WHITENING_FILTERS] = whitening_filters(images)
        self.whitening.weight.set_data(filters)
        self.whitening.bias.set_data(np.zeros(WHITENING_CHANNELS, dtype=np.float32))

    def zero_padding(self):
        """Puts the bias of the whitening layer's padding channels back to 0 (after an update
        that moved it), so that they output 0 again."""
        for bias in self.whitening.bias.list_data():
            bias[WHITENING_FILTERS:] = 0


def patches(images, size=WHITENING_KERNEL):
    """Every size x size patch of NCHW images, as rows of c * size * size values (c, then rows)."""
    n, c, h, w = images.shape
    windows = np.lib.stride_tricks.sliding_window_view(images, (size, size), axis=(2, 3))
    return windows.transpose(0, 2, 3, 1, 4, 5).reshape(-1, c * size * size)


def whitening_filters(images, eps=WHITENING_EPSILON):
    """The 2 * c * k * k filters that whiten the k x k patches of images: each eigenvector of the
    patches' covariance divided by the square root of its eigenvalue plus eps, largest first,
    then the same negated."""
    flat = patches(images).astype(np.float64)
    covariance = flat.T @ flat / len(flat)
    values, vectors = np.linalg.eigh(covariance)
    order = np.argsort(values)[::-1]
    scaled = (vectors[:, order] / np.sqrt(values[order] + eps)).T
    c = images.shape[1]
    filters = scaled.reshape(-1, c, WHITENING_KERNEL, WHITENING_KERNEL)
    return np.concatenate([filters, -filters]).astype(np.float32)
