"""Test-time augmentation as airbench94 does it (legacy/airbench94.py, tta_level 2): the logits
of an image are the mean of the network's on it and on its mirror image, and that mean is itself
averaged, half and half, with the same for the image translated by one pixel up-left and by one
pixel down-right (reflection-padded):

    mirror(x) = (f(x) + f(flip(x))) / 2
    level 1:    mirror(x)
    level 2:    mirror(x) / 2 + (mirror(x shifted -1,-1) + mirror(x shifted +1,+1)) / 4
"""
import mxnet as mx

LEVEL = 2  # airbench94's


def _mirror(net, x):
    return 0.5 * net(x) + 0.5 * net(x.flip(axis=3))


def tta_logits(net, x, level=LEVEL):
    """The test-time-augmented logits of the batch x (NDArray, NCHW); level 0 is net(x)."""
    if level == 0:
        return net(x)
    logits = _mirror(net, x)
    if level == 1:
        return logits
    h, w = x.shape[2:]
    padded = mx.nd.pad(x, mode="reflect", pad_width=(0, 0, 0, 0, 1, 1, 1, 1))
    shifted = 0.5 * (_mirror(net, padded[:, :, 0:h, 0:w]) + _mirror(net, padded[:, :, 2:h + 2, 2:w + 2]))
    return 0.5 * logits + 0.5 * shifted
