"""Networks for CIFAR-10, as Gluon HybridBlocks, and the factory that names them."""
from .spec_resnet import ConvBlock, ResidualBlock, Scale, SpecResNet, can_fuse_bn_relu
from .zoo import SPEC, build, initialize, is_spec, record_name, uses_batch_statistics

__all__ = ["ConvBlock", "ResidualBlock", "Scale", "SpecResNet", "can_fuse_bn_relu", "SPEC", "build",
           "initialize", "is_spec", "record_name", "uses_batch_statistics"]
