"""Networks by name: the spec'd network, the spec material's Inception networks, or any model
of GluonCV's model zoo.

    build("spec", 10)                   the spec'd SpecResNet
    build("sub-inception-rrelu", 100)   models.inception.SubInceptionRReLU (28x28 crops)
    build("inception-bn-small", 10)     models.inception.InceptionBNSmall (28x28 crops)
    build("cifar_resnet20_v1", 10)      gluoncv.model_zoo.get_model(name, classes=10)

GluonCV is imported only when one of its models is asked for (it is slow to import).
"""
import mxnet as mx

from .inception import InceptionBNSmall, SubInceptionRReLU
from .spec_resnet import SpecResNet, can_fuse_bn_relu

SPEC = "spec"
SPEC_RECORD_NAME = "spec-resnet"  # the name checkpoints and exports of SpecResNet carry
INCEPTIONS = {"sub-inception-rrelu": SubInceptionRReLU, "inception-bn-small": InceptionBNSmall}
CROP = 28  # pixels per side the Inception networks see: random crops in training, centre in test
# MXNet's image-classification examples initialised these networks so (Xavier, 'in', 2.34).
INCEPTION_INIT = mx.init.Xavier(rnd_type="uniform", factor_type="in", magnitude=2.34)


def record_name(name):
    """The name a checkpoint or export records for --model name."""
    return SPEC_RECORD_NAME if name in (SPEC, SPEC_RECORD_NAME) else name


def is_spec(name):
    return record_name(name) == SPEC_RECORD_NAME


def uses_batch_statistics(name):
    """True for the spec'd network, which normalises with each batch's statistics also in
    evaluation; GluonCV's networks use their running statistics outside training."""
    return is_spec(name)


def input_size(name):
    """Pixels per side of the network's input: 32, or CROP for the Inception networks."""
    return CROP if name in INCEPTIONS else 32


def check_name(name):
    """Raises ValueError unless name is 'spec', an Inception network or a GluonCV model."""
    if is_spec(name) or name in INCEPTIONS:
        return
    from gluoncv import model_zoo

    if name.lower() not in model_zoo.get_model_list():  # get_model takes any case
        cifar = sorted(n for n in model_zoo.get_model_list() if n.startswith("cifar_"))
        raise ValueError("--model %s: not 'spec', %s, or a GluonCV model; its CIFAR models are %s"
                         % (name, ", ".join(sorted(INCEPTIONS)), ", ".join(cifar)))


def build(name, num_classes, ctx=None):
    """An uninitialised network. ctx: where it will run (the spec'd network fuses BatchNorm+ReLU
    on oneDNN CPUs). Raises ValueError for a name check_name refuses."""
    check_name(name)
    if is_spec(name):
        return SpecResNet(num_classes, fuse_bn_relu=bool(ctx) and can_fuse_bn_relu(ctx))
    if name in INCEPTIONS:
        return INCEPTIONS[name](num_classes)
    from gluoncv import model_zoo

    return model_zoo.get_model(name, classes=num_classes)


def initialize(net, name, ctx):
    """The spec'd network carries its own initialisers; GluonCV's are Xavier-initialised as in
    GluonCV's CIFAR training script."""
    if is_spec(name):
        net.initialize(ctx=ctx)
    elif name in INCEPTIONS:
        net.initialize(INCEPTION_INIT, ctx=ctx)
    else:
        net.initialize(mx.init.Xavier(), ctx=ctx)
