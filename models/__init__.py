"""Networks for CIFAR, as Gluon HybridBlocks, and the factory that names them."""
from .airbench import Airbench94, ConvGroup
from .inception import InceptionBNSmall, RReLU, SubInceptionRReLU
from .spec_resnet import ConvBlock, ResidualBlock, Scale, SpecResNet, can_fuse_bn_relu
from .zoo import (AIRBENCH94, NETWORKS, SPEC_RESNET, Network, build, canonical_name, image_convolution_filters,
                  initialize, input_size, names, network, register, unprefixed, uses_batch_statistics)

__all__ = ["Airbench94", "ConvGroup", "ConvBlock", "ResidualBlock", "Scale", "SpecResNet", "can_fuse_bn_relu",
           "InceptionBNSmall", "RReLU", "SubInceptionRReLU", "AIRBENCH94", "NETWORKS", "SPEC_RESNET", "Network",
           "build", "canonical_name", "image_convolution_filters", "initialize", "input_size", "names", "network",
           "register", "unprefixed", "uses_batch_statistics"]
