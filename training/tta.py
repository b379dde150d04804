"""Test-time augmentation as airbench94 does it (legacy/airbench94.py, tta_level 2): the logits
of an image are the mean of the network's on it and on its mirror image, and that mean is itself
averaged, half and half, with the same for the image translated by one pixel up-left and by one
pixel down-right (reflection-padded):

    mirror(x) = (f(x) + f(flip(x))) / 2
    level 1:    mirror(x)
    level 2:    mirror(x) / 2 + (mirror(x shifted -1,-1) + mirror(x shifted +1,+1)) / 4

It wraps any callable from normalised numpy images to logits (saved_model's MXNetNet or OnnxNet),
so that training's last evaluation, prediction in MXNet and prediction in ONNX Runtime all take
the same views the same way.
"""
import numpy as np

LEVELS = (0, 1, 2)  # none; mirror; mirror and one-pixel translations (airbench94's)


class TTAModel:
    """model(images) -> logits, with each image's logits averaged over the views of `level`."""

    def __init__(self, model, level):
        if level not in LEVELS:
            raise ValueError("test-time augmentation level must be one of %s, got %r" % (LEVELS, level))
        self.model, self.level = model, level

    def _mirror(self, x):
        return 0.5 * self.model(x) + 0.5 * self.model(np.ascontiguousarray(x[:, :, :, ::-1]))

    def __call__(self, x):
        if self.level == 0:
            return self.model(x)
        logits = self._mirror(x)
        if self.level == 1:
            return logits
        h, w = x.shape[2:]
        padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")
        shifted = 0.5 * (self._mirror(np.ascontiguousarray(padded[:, :, 0:h, 0:w]))
                         + self._mirror(np.ascontiguousarray(padded[:, :, 2:h + 2, 2:w + 2])))
        return 0.5 * logits + 0.5 * shifted
