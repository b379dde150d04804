"""Networks by name (--model): one row of NETWORKS each, and any model of GluonCV's model zoo.

    NETWORKS["spec-resnet"]           the spec'd SpecResNet
    NETWORKS["sub-inception-rrelu"]   models.inception.SubInceptionRReLU (28x28 crops)
    NETWORKS["inception-bn-small"]    models.inception.InceptionBNSmall (28x28 crops)
    NETWORKS["airbench94"]            models.airbench.Airbench94 (its whitening set from data)
    "cifar_resnet20_v1", ...          gluoncv.model_zoo.get_model(name, classes=N)

A new network is one `register(Network(...))`. Each network has one name, the one runs,
checkpoints and exports record; `canonical_name` turns an alias (`spec`) into it once, when the
flags are read. GluonCV is imported only when one of its models is asked for (it is slow to
import).
"""
from dataclasses import dataclass, replace

import mxnet as mx

from .airbench import Airbench94
from .inception import InceptionBNSmall, SubInceptionRReLU
from .spec_resnet import WIDTHS, SpecResNet, can_fuse_bn_relu

SPEC_RESNET = "spec-resnet"
AIRBENCH94 = "airbench94"
WHITENING_IMAGES = 5000  # training images whose patches airbench94's whitening is computed from
CROP = 28  # pixels per side the Inception networks see: random crops in training, centre in test


@dataclass(frozen=True)
class Network:
    """One network --model can name, and what the rest of the code asks of it."""
    name: str
    summary: str  # what --model's help says of it
    build: object  # build(num_classes, ctx, population_statistics, bf16_on_amx) -> HybridBlock
    initializer: object = None  # an mx.init.Initializer, or None: the network carries its own
    batch_statistics: bool = False  # normalises with each batch's statistics in evaluation too
    input_size: int = 32  # pixels per side of its input
    image_convolution_filters: int = None  # the image convolution's filters where no other has as many
    needs_its_recipe: bool = False  # trains only with a recipe made for it (whose network it is)
    aliases: tuple = ()  # other names --model takes for it
    prepare: object = None  # prepare(net, train_images) after initialisation, or None


def _spec_resnet(num_classes, ctx, population_statistics, bf16_on_amx):
    return SpecResNet(num_classes, fuse_bn_relu=bool(ctx) and can_fuse_bn_relu(ctx),
                      widen_first_stage=bf16_on_amx, population_statistics=population_statistics)


def _whiten(net, train_images):
    net.whiten(train_images[:WHITENING_IMAGES].asnumpy())


def _gluoncv(name):
    def build(num_classes, ctx, population_statistics, bf16_on_amx):
        from gluoncv import model_zoo

        return model_zoo.get_model(name, classes=num_classes)
    return build


# MXNet's image-classification examples initialised the Inception networks so.
INCEPTION_INIT = mx.init.Xavier(rnd_type="uniform", factor_type="in", magnitude=2.34)
NETWORKS = {}  # name -> Network


def register(network):
    """Makes `network` a choice of --model under its name and aliases; returns it."""
    NETWORKS[network.name] = network
    return network


# The spec'd network normalises with each batch's statistics in evaluation too (the spec); the
# others use their running statistics outside training. Mixed precision keeps the spec'd
# network's image convolution in float32 by its filter count (training/precision.py says why).
register(Network(SPEC_RESNET, "the spec'd network", _spec_resnet, batch_statistics=True,
                 image_convolution_filters=WIDTHS[0], aliases=("spec",)))
register(Network("sub-inception-rrelu", "28x28 crops",
                 lambda n, ctx, population_statistics, bf16_on_amx: SubInceptionRReLU(n),
                 initializer=INCEPTION_INIT, input_size=CROP))
register(Network("inception-bn-small", "28x28 crops",
                 lambda n, ctx, population_statistics, bf16_on_amx: InceptionBNSmall(n),
                 initializer=INCEPTION_INIT, input_size=CROP))
register(Network(AIRBENCH94, "its whitening computed from the training images",
                 lambda n, ctx, population_statistics, bf16_on_amx: Airbench94(n),
                 needs_its_recipe=True, prepare=_whiten))
# Any other name is a GluonCV model, initialised as GluonCV's CIFAR training script does.
GLUONCV = Network("gluoncv", "a GluonCV model zoo name such as cifar_resnet20_v1", None,
                  initializer=mx.init.Xavier())


def network(name):
    """The Network of a canonical name (a GluonCV model's made from GLUONCV)."""
    if name in NETWORKS:
        return NETWORKS[name]
    return replace(GLUONCV, name=name, build=_gluoncv(name))


def canonical_name(name):
    """The network's one name; raises ValueError unless it is registered (or an alias) or a
    GluonCV model."""
    for row in NETWORKS.values():
        if name == row.name or name in row.aliases:
            return row.name
    from gluoncv import model_zoo

    if name.lower() not in model_zoo.get_model_list():  # get_model takes any case
        cifar = sorted(n for n in model_zoo.get_model_list() if n.startswith("cifar_"))
        raise ValueError("%s is not %s, or a GluonCV model; its CIFAR models are %s"
                         % (name, ", ".join(names()), ", ".join(cifar)))
    return name


def names():
    """The registered networks' names, aliases in parentheses ('spec-resnet (spec)')."""
    return ["%s (%s)" % (n.name, ", ".join(n.aliases)) if n.aliases else n.name for n in NETWORKS.values()]


def unprefixed(name):
    """'specresnet3_convblock0_conv0_weight' -> 'convblock0_conv0_weight': the same parameter in
    any instance of the network (Gluon's prefix counts the instances)."""
    return name.split("_", 1)[1]


def uses_batch_statistics(name):
    return network(name).batch_statistics


def image_convolution_filters(name):
    return network(name).image_convolution_filters


def input_size(name):
    return network(name).input_size


def build(name, num_classes, ctx=None, population_statistics=False, bf16_on_amx=False):
    """An uninitialised network by its canonical name. ctx: where it will run (the spec'd
    network fuses BatchNorm+ReLU on oneDNN CPUs). population_statistics: the spec'd network's
    deployment form (models.spec_resnet). bf16_on_amx: it computes in bfloat16 on oneDNN's AMX
    kernels (the spec'd network widens its first stage for them)."""
    return network(name).build(num_classes, ctx, population_statistics, bf16_on_amx)


def initialize(net, name, ctx, train_images=None):
    """Initialises net as its row says; train_images (normalised NCHW NDArray) for a network
    prepared from data (airbench94's whitening)."""
    row = network(name)
    if row.initializer is None:
        net.initialize(ctx=ctx)
    else:
        net.initialize(row.initializer, ctx=ctx)
    if row.prepare is not None:
        row.prepare(net, train_images)
