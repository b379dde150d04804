"""Networks for CIFAR, as Gluon HybridBlocks, and the factory that names them."""
from .inception import InceptionBNSmall, RReLU, SubInceptionRReLU
from .spec_resnet import ConvBlock, ResidualBlock, Scale, SpecResNet, can_fuse_bn_relu
from .zoo import (SPEC, build, check_name, initialize, input_size, is_spec, record_name,
                  uses_batch_statistics)

__all__ = ["ConvBlock", "ResidualBlock", "Scale", "SpecResNet", "can_fuse_bn_relu",
           "InceptionBNSmall", "RReLU", "SubInceptionRReLU", "SPEC", "build", "check_name", "initialize",
           "input_size", "is_spec", "record_name", "uses_batch_statistics"]
