"""Networks for CIFAR, as Gluon HybridBlocks, and the registry that names them (--model).

    spec_resnet  the spec'd network (ConvBlock, ResidualBlock, Scale, SpecResNet), the spec in
                 its docstring
    airbench     airbench94's network (ConvGroup, Airbench94, its whitening), for --recipe fast94
    inception    the spec material's two Inception networks (28x28 crops)
    zoo          the registry: one Network row each (builder, initialiser, input size, ...), and
                 GluonCV's model zoo for any other name
"""
from .airbench import Airbench94, ConvGroup
from .inception import InceptionBNSmall, RReLU, SubInceptionRReLU
from .spec_resnet import ConvBlock, ResidualBlock, Scale, SpecResNet, can_fuse_bn_relu
from .zoo import (AIRBENCH94, NETWORKS, SPEC_RESNET, Network, build, canonical_name, image_convolution_filters,
                  initialize, input_size, names, network, register, unprefixed, uses_batch_statistics)

__all__ = ["Airbench94", "ConvGroup", "ConvBlock", "ResidualBlock", "Scale", "SpecResNet", "can_fuse_bn_relu",
           "InceptionBNSmall", "RReLU", "SubInceptionRReLU", "AIRBENCH94", "NETWORKS", "SPEC_RESNET", "Network",
           "build", "canonical_name", "image_convolution_filters", "initialize", "input_size", "names", "network",
           "register", "unprefixed", "uses_batch_statistics"]
