"""The spec'd network: a simplified residual network, as the product's specification gives it.

    ConvBlock(3 -> 16)                        no skip
    ResidualBlock(16 -> 32)   MaxPool 2x2
    ResidualBlock(32 -> 64)   MaxPool 2x2
    ResidualBlock(64 -> 128)  global MaxPool  (8x8 -> 1x1)
    Dense(128 -> classes, no bias)
    Scale(0.125)                              applied to the logits

- ConvBlock: y = ReLU(BN(Conv3x3(x))). ResidualBlock: y + Conv1x1(x), the skip added after the
  ReLU.
- Convolutions: stride 1, "same" size (3x3 pads one pixel of zeros, 1x1 none), no bias;
  weights ~ Uniform(-s, s) with s = sqrt(1 / (kh * kw * cin)). Dense: no bias, s = sqrt(1 / in).
- BatchNorm: no scale, no shift and no running statistics:
  bn(x) = (x - mean_c) / sqrt(var_c + 1e-5), the mean and biased variance per channel over the
  batch and spatial axes of the current batch, in training and in evaluation alike (PyTorch's
  BatchNorm2d(affine=False, track_running_stats=False)). Predictions therefore depend on what
  else is in the batch.

For deployment the same weights can normalise with population statistics instead
(`SpecResNet(population_statistics=True)`): each BatchNorm uses a stored per-channel mean and
variance of its input over the training set (training/population.py measures them), so every
image is predicted on its own. That form is not the spec's network: training and the spec's
evaluation always use the batch statistics.

On CPUs, MXNet's oneDNN build can compute BatchNorm and the ReLU after it as one
fused operator (same numbers, about 20% less time per training step, see
docs/results-and-speed.md); that operator has no GPU implementation, so it is a switch
(`fuse_bn_relu`) that the training script turns on for CPU contexts only.

The widened first stage (`widen_first_stage`, for bfloat16 on AMX): the first ConvBlock's 16
channels are handed on as WIDE_STAGE channels, the others exactly 0, and the convolutions of the
first ResidualBlock read them with as many zero weights; the same numbers (every added term is
an exact 0), the same parameters. Why: MXNet 1.9.1 accepts a oneDNN kernel only when its weight
layout has the size of the weight array, and oneDNN's AMX kernels pad 16 input channels to 32,
so a convolution of 16 channels fell back to AVX-512 kernels in another memory layout, and the
layout changes and a reference sum around them took a quarter of a bfloat16 step
(docs/results-and-speed.md). The training script turns it on for bfloat16 on AMX only; exports
are traced without it (`portable`).
"""
import contextlib

import mxnet as mx
from mxnet import autograd
from mxnet.gluon import nn

WIDTHS = (16, 32, 64, 128)  # output channels of the four blocks
# per ResidualBlock: 2x2 max pool after the 1st and 2nd; the last ends in the global pool
POOL_AFTER = (True, True, False)
LOGIT_SCALE = 0.125
BN_EPSILON = 1e-5
WIDE_STAGE = 32  # channels the widened first stage hands on: the fewest oneDNN's AMX kernels take unpadded

# Uniform(-s, s) with s = sqrt(1 / fan_in), fan_in = cin * kh * kw (conv) or in_units (dense).
FAN_IN_UNIFORM = mx.init.Xavier(rnd_type="uniform", factor_type="in", magnitude=1)


def can_fuse_bn_relu(ctx):
    """True when every context is a CPU and MXNet was built with oneDNN (MKLDNN)."""
    return (all(c.device_type == "cpu" for c in ctx)
            and mx.runtime.Features().is_enabled("MKLDNN"))


# ----------------------------------------------------------------------------------------------
# Layer settings, built once

def _conv(channels, kernel, in_channels):
    """A stride-1 'same' convolution without bias (3x3 pads 1, 1x1 pads 0)."""
    return Conv(channels, kernel, strides=1, padding=kernel // 2, use_bias=False,
                in_channels=in_channels, weight_initializer=FAN_IN_UNIFORM)


def _value(F, param, like):
    """A child block's parameter inside its parent's hybrid_forward: its variable when a graph is
    built, its value on like's context otherwise."""
    return param.var() if F is mx.sym else param.data(like.context)


def _embedding(F, weight, channels, width):
    """Weights of a 3x3 convolution that copies its input's `channels` channels into the first
    of `width` and leaves the rest 0: the identity at the kernel's centre, no gradient. Made from
    weight (a parameter with `channels` filters), since under AMP a graph cannot create a constant
    (AMP's wrappers fail on operators without inputs)."""
    eye = F.diag(F.ones_like(F.sum(weight, axis=(1, 2, 3))))  # channels x channels
    eye = F.pad(F.reshape(eye, shape=(0, 0, 1, 1)), mode="constant", pad_width=(0, 0, 0, 0, 1, 1, 1, 1))
    extra = width - channels
    zeros = F.zeros_like(F.slice_axis(F.tile(eye, reps=(-(-extra // channels), 1, 1, 1)), axis=0,
                                      begin=0, end=extra))
    return F.BlockGrad(F.concat(eye, zeros, dim=0))


def _norm(channels, population_statistics):
    """BatchNorm without learnable shift or scale (center/scale off).

    The spec's form normalises with the current batch only: SpecResNet runs every forward pass
    in train mode, and momentum=1.0 keeps the moving statistics where they are, so training
    never stores a statistic of any data in them. population_statistics: normalise with the
    moving statistics instead, always (use_global_stats), which then hold the training set's
    population statistics (training/population.py).
    """
    return nn.BatchNorm(center=False, scale=False, epsilon=BN_EPSILON, momentum=1.0,
                        use_global_stats=population_statistics, in_channels=channels)


# ----------------------------------------------------------------------------------------------
# Blocks

class Conv(nn.Conv2D):
    """nn.Conv2D that can read an input widened by `zero_inputs` channels of zeros behind its
    own: it adds as many input channels of zero weights (the widened first stage)."""
    zero_inputs = 0

    def hybrid_forward(self, F, x, weight, bias=None):
        if self.zero_inputs:
            zeros = F.zeros_like(F.slice_axis(weight, axis=1, begin=0, end=self.zero_inputs))
            weight = F.concat(weight, zeros, dim=1)
        return super().hybrid_forward(F, x, weight, bias)


class ConvBlock(nn.HybridBlock):
    """y = ReLU(BN(Conv3x3(x))): the spec's Block without skip."""

    def __init__(self, channels, in_channels, population_statistics=False, **kwargs):
        super().__init__(**kwargs)
        self.taps = None  # a list that receives the BatchNorm's input (SpecResNet.tap_batch_norm_inputs)
        self.widen_to = None  # channels its output is handed on as (the widened first stage)
        with self.name_scope():
            self.conv = _conv(channels, 3, in_channels)
            self.bn = _norm(channels, population_statistics)

    def hybrid_forward(self, F, x):
        z = self.conv(x)
        if self.taps is not None:
            self.taps.append(z)
        y = self.bn(z)
        # Activation (not F.relu): oneDNN runs it in its own memory layout; F.relu forced two
        # layout conversions of the activations per call (docs/results-and-speed.md).
        y = y if self.bn.fuse_relu else F.Activation(y, act_type="relu")
        if self.widen_to is None:
            return y
        channels = self.conv._channels
        embedding = _embedding(F, _value(F, self.conv.weight, x), channels, self.widen_to)
        return F.Convolution(y, embedding, kernel=(3, 3), pad=(1, 1), num_filter=self.widen_to, no_bias=True)


class ResidualBlock(nn.HybridBlock):
    """ConvBlock(x) + Conv1x1(x): the spec's Block with skip, added after the ReLU."""

    def __init__(self, channels, in_channels, population_statistics=False, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.body = ConvBlock(channels, in_channels, population_statistics)
            self.skip = _conv(channels, 1, in_channels)

    def hybrid_forward(self, F, x):
        return self.body(x) + self.skip(x)


class Scale(nn.HybridBlock):
    """Multiplies by a fixed alpha (not learned)."""

    def __init__(self, alpha, **kwargs):
        super().__init__(**kwargs)
        self.alpha = alpha

    def hybrid_forward(self, F, x):
        return x * self.alpha

    def __repr__(self):
        return "{}(alpha={})".format(self.__class__.__name__, self.alpha)


# ----------------------------------------------------------------------------------------------
# The network

class SpecResNet(nn.HybridBlock):
    """The spec'd network. Children: `features` (image -> 128 values) and `output` (-> logits).

    population_statistics: the deployment form, whose BatchNorms use the stored statistics
    (module docstring); the parameters are the same in both forms.
    """

    def __init__(self, num_classes=10, widths=WIDTHS, alpha=LOGIT_SCALE, fuse_bn_relu=False,
                 widen_first_stage=False, population_statistics=False, **kwargs):
        super().__init__(**kwargs)
        self.population_statistics = population_statistics
        self._taps = None
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            self.features.add(ConvBlock(widths[0], in_channels=3,
                                        population_statistics=population_statistics))
            for cin, cout, pool in zip(widths[:-1], widths[1:], POOL_AFTER):
                self.features.add(ResidualBlock(cout, in_channels=cin,
                                                population_statistics=population_statistics))
                if pool:
                    self.features.add(nn.MaxPool2D(pool_size=2, strides=2))
            self.features.add(nn.GlobalMaxPool2D())

            self.output = nn.HybridSequential(prefix="")
            self.output.add(nn.Dense(num_classes, use_bias=False, in_units=widths[-1],
                                     weight_initializer=FAN_IN_UNIFORM))
            self.output.add(Scale(alpha))
        self.fuse_bn_relu(fuse_bn_relu)
        self.widen_first_stage(widen_first_stage)

    def _conv_blocks(self):
        blocks = [block.body if isinstance(block, ResidualBlock) else block for block in self.features]
        return [block for block in blocks if isinstance(block, ConvBlock)]

    def batch_norms(self):
        """The BatchNorm blocks, from the input on."""
        return [block.bn for block in self._conv_blocks()]

    def widen_first_stage(self, enabled):
        """Hands the first ConvBlock's output on as WIDE_STAGE channels, the added ones 0, to a
        first ResidualBlock that reads them with zero weights (module docstring), or not. The
        parameters and the numbers are the same either way; a hybridized graph is rebuilt at the
        next call."""
        first, block = self.features[0], self.features[1]
        extra = WIDE_STAGE - first.conv._channels if enabled else 0
        first.widen_to = WIDE_STAGE if extra > 0 else None
        block.body.conv.zero_inputs = block.skip.zero_inputs = max(extra, 0)
        self.widened_first_stage = extra > 0
        self._clear_cached_op()

    @contextlib.contextmanager
    def portable(self):
        """A block in which the network computes as every MXNet build does (no fused BatchNorm+ReLU,
        no widened first stage: what an export is traced from); as before after it."""
        fused, widened = self.fused_bn_relu, self.widened_first_stage
        self.fuse_bn_relu(False)
        self.widen_first_stage(False)
        try:
            yield self
        finally:
            self.fuse_bn_relu(fused)
            self.widen_first_stage(widened)

    def fuse_bn_relu(self, enabled):
        """Computes each BatchNorm + ReLU as one operator (oneDNN CPU builds only) or as two.

        The parameters and the numbers are the same either way; a hybridized graph is rebuilt
        at the next call.
        """
        self.fused_bn_relu = enabled
        for bn in self.batch_norms():
            bn.fuse_relu = enabled
        self._clear_cached_op()

    def forward(self, x, *args):
        if self.population_statistics:
            return super().forward(x, *args)
        # Batch statistics are part of the spec'd network, so every call computes with them
        # (MXNet's BatchNorm uses its moving statistics in predict mode). Without autograd.record()
        # this changes nothing else: the moving statistics stay put (momentum 1).
        with autograd.train_mode():
            return super().forward(x, *args)

    def tap_batch_norm_inputs(self, enabled):
        """While enabled, a call returns [logits, the input of each BatchNorm (batch_norms()
        order)], hybridized as every call is: what training/population.py measures."""
        self._taps = [] if enabled else None
        for bn_block in self._conv_blocks():
            bn_block.taps = self._taps
        self._clear_cached_op()

    def hybrid_forward(self, F, x):
        if self._taps is None:
            return self.output(self.features(x))
        del self._taps[:]  # filled again by the ConvBlocks, with symbols when a graph is built
        logits = self.output(self.features(x))
        return [logits] + self._taps
