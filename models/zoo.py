"""Networks by name: the spec'd network, the spec material's Inception networks, or any model
of GluonCV's model zoo.

    build("spec-resnet", 10)            the spec'd SpecResNet
    build("sub-inception-rrelu", 100)   models.inception.SubInceptionRReLU (28x28 crops)
    build("inception-bn-small", 10)     models.inception.InceptionBNSmall (28x28 crops)
    build("airbench94", 10)             models.airbench.Airbench94 (its whitening set from data)
    build("cifar_resnet20_v1", 10)      gluoncv.model_zoo.get_model(name, classes=10)

Each model has one name, the one runs, checkpoints and exports record; `canonical_name` turns
the short alias `spec` into it once, when the flags are read. GluonCV is imported only when one
of its models is asked for (it is slow to import).
"""
import mxnet as mx

from .airbench import Airbench94
from .inception import InceptionBNSmall, SubInceptionRReLU
from .spec_resnet import WIDTHS, SpecResNet, can_fuse_bn_relu

SPEC_RESNET = "spec-resnet"
AIRBENCH94 = "airbench94"
WHITENING_IMAGES = 5000  # training images whose patches airbench94's whitening is computed from
ALIASES = {"spec": SPEC_RESNET}  # the short name --model has always taken
INCEPTIONS = {"sub-inception-rrelu": SubInceptionRReLU, "inception-bn-small": InceptionBNSmall}
CROP = 28  # pixels per side the Inception networks see: random crops in training, centre in test
# MXNet's image-classification examples initialised these networks so (Xavier, 'in', 2.34).
INCEPTION_INIT = mx.init.Xavier(rnd_type="uniform", factor_type="in", magnitude=2.34)


def canonical_name(name):
    """The model's one name; raises ValueError unless it is the spec'd network (also 'spec'),
    an Inception network or a GluonCV model."""
    name = ALIASES.get(name, name)
    if name in (SPEC_RESNET, AIRBENCH94) or name in INCEPTIONS:
        return name
    from gluoncv import model_zoo

    if name.lower() not in model_zoo.get_model_list():  # get_model takes any case
        cifar = sorted(n for n in model_zoo.get_model_list() if n.startswith("cifar_"))
        raise ValueError("%s is not %s (or spec), %s, %s, or a GluonCV model; its CIFAR models are %s"
                         % (name, SPEC_RESNET, AIRBENCH94, ", ".join(sorted(INCEPTIONS)), ", ".join(cifar)))
    return name


def unprefixed(name):
    """'specresnet3_convblock0_conv0_weight' -> 'convblock0_conv0_weight': the same parameter in
    any instance of the network (Gluon's prefix counts the instances)."""
    return name.split("_", 1)[1]


def uses_batch_statistics(name):
    """True for the spec'd network, which normalises with each batch's statistics also in
    evaluation; the other networks use their running statistics outside training."""
    return name == SPEC_RESNET


def image_convolution_filters(name):
    """The filters of the convolution that reads the image, where no other convolution of the
    network has as many (the spec'd network's 16), else None: mixed precision keeps that one
    convolution in float32 by its filter count (training/precision.py says why)."""
    return WIDTHS[0] if name == SPEC_RESNET else None


def input_size(name):
    """Pixels per side of the network's input: 32, or CROP for the Inception networks."""
    return CROP if name in INCEPTIONS else 32


def build(name, num_classes, ctx=None, population_statistics=False, bf16_on_amx=False):
    """An uninitialised network by its canonical name. ctx: where it will run (the spec'd
    network fuses BatchNorm+ReLU on oneDNN CPUs). population_statistics: the spec'd network's
    deployment form (models.spec_resnet). bf16_on_amx: it computes in bfloat16 on oneDNN's AMX
    kernels (the spec'd network widens its first stage for them)."""
    if name == SPEC_RESNET:
        return SpecResNet(num_classes, fuse_bn_relu=bool(ctx) and can_fuse_bn_relu(ctx),
                          widen_first_stage=bf16_on_amx, population_statistics=population_statistics)
    if name in INCEPTIONS:
        return INCEPTIONS[name](num_classes)
    if name == AIRBENCH94:
        return Airbench94(num_classes)
    from gluoncv import model_zoo

    return model_zoo.get_model(canonical_name(name), classes=num_classes)


def initialize(net, name, ctx, train_images=None):
    """The spec'd network carries its own initialisers; airbench94 too, and its whitening is
    computed from the first WHITENING_IMAGES of train_images (normalised NCHW NDArray); the
    Inception networks are initialised as MXNet's examples did, GluonCV's with Xavier as in
    GluonCV's CIFAR training script."""
    if name == SPEC_RESNET:
        net.initialize(ctx=ctx)
    elif name == AIRBENCH94:
        net.initialize(ctx=ctx)
        net.whiten(train_images[:WHITENING_IMAGES].asnumpy())
    elif name in INCEPTIONS:
        net.initialize(INCEPTION_INIT, ctx=ctx)
    else:
        net.initialize(mx.init.Xavier(), ctx=ctx)
