"""airbench94's training augmentation: "alternating flip" and a translation of up to 2 pixels,
for batches of the in-memory training set (normalised float32 NCHW), as one gather per batch.

- Alternating flip (arXiv 2404.00498, section 3.6): a seed draws once which training images are
  mirrored in even epochs (each with probability 1/2); odd epochs mirror exactly the others. So
  every image is seen both ways in every two epochs, instead of by chance.
- Translation: each image is padded by reflection and a 32x32 window taken at a random offset of
  -2..2 pixels in each direction, drawn anew every epoch.
"""
import mxnet as mx
import numpy as np

TRANSLATE = 2  # pixels, at most, in each direction


class AlternatingFlip:
    """Which training images are mirrored in which epoch: drawn once per run from its rng."""

    def __init__(self, num_images, rng):
        self.even = rng.rand(num_images) < 0.5  # mirrored in epochs 0, 2, 4, ...

    def mirrored(self, indices, epoch):
        """The mirror mask of the images at `indices` (of the training set) in `epoch`."""
        return self.even[indices] ^ bool(epoch % 2)


def translate_and_mirror(x, rng, mirror, translate=TRANSLATE):
    """The batch x (NDArray, NCHW), each image reflection-padded by `translate` pixels, cut back
    to its size at a random offset of -translate..translate per direction (drawn from rng), and
    mirrored where `mirror` (a boolean per image) says. Returns (batch, offsets (n, 2): rows, columns)."""
    n, c, h, w = x.shape
    padded = mx.nd.pad(x, mode="reflect", pad_width=(0, 0, 0, 0) + (translate,) * 4)
    hp, wp = h + 2 * translate, w + 2 * translate
    offsets = rng.randint(-translate, translate + 1, size=(n, 2))
    rows = translate + offsets[:, :1] + np.arange(h)
    columns = translate + offsets[:, 1:] + np.where(mirror[:, None], np.arange(w)[::-1], np.arange(w))
    index = (((np.arange(n)[:, None, None, None] * c + np.arange(c)[None, :, None, None]) * hp
              + rows[:, None, :, None]) * wp + columns[:, None, None, :])
    out = mx.nd.take(padded.reshape((-1,)), mx.nd.array(index.ravel(), ctx=x.context, dtype=np.int32))
    return out.reshape((n, c, h, w)), offsets
