"""Networks for CIFAR-10, as Gluon HybridBlocks."""
from .spec_resnet import ConvBlock, ResidualBlock, Scale, SpecResNet, can_fuse_bn_relu

__all__ = ["ConvBlock", "ResidualBlock", "Scale", "SpecResNet", "can_fuse_bn_relu"]
