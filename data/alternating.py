"""airbench94's training augmentation: "alternating flip" and a translation of up to 2 pixels,
for batches of the in-memory training set (normalised float32 NCHW), as one gather per batch
(pipeline.windows, as GluonCV's augmentation takes its crops).

- Alternating flip (arXiv 2404.00498, section 3.6): a seed draws once which training images are
  mirrored in even epochs (each with probability 1/2); odd epochs mirror exactly the others. So
  every image is seen both ways in every two epochs, instead of by chance.
- Translation: each image is padded by reflection and a 32x32 window taken at a random offset of
  -2..2 pixels in each direction, drawn anew every epoch.
"""
import mxnet as mx

from .pipeline import windows

TRANSLATE = 2  # pixels, at most, in each direction


class AlternatingFlip:
    """Which training images are mirrored in which epoch: drawn once per run from its rng."""

    def __init__(self, num_images, rng):
        self.even = rng.rand(num_images) < 0.5  # mirrored in epochs 0, 2, 4, ...

    def mirrored(self, indices, epoch):
        """The mirror mask of the images at `indices` (of the training set) in `epoch`."""
        return self.even[indices] ^ bool(epoch % 2)


class AlternatingFlipTranslate:
    """The two as a training augmentation: called with each batch, the indices of its images in
    the training set, the epoch and the run's rng."""

    def __init__(self, num_images, rng, translate=TRANSLATE):
        self.flip, self.translate = AlternatingFlip(num_images, rng), translate

    def __call__(self, x, indices, epoch, rng):
        return translate_and_mirror(x, rng, self.flip.mirrored(indices, epoch), self.translate)[0]


def translate_and_mirror(x, rng, mirror, translate=TRANSLATE):
    """The batch x (NDArray, NCHW), each image reflection-padded by `translate` pixels, cut back
    to its size at a random offset of -translate..translate per direction (drawn from rng), and
    mirrored where `mirror` (a boolean per image) says. Returns (batch, offsets (n, 2): rows, columns)."""
    n, size = x.shape[0], x.shape[2]  # square images
    padded = mx.nd.pad(x, mode="reflect", pad_width=(0, 0, 0, 0) + (translate,) * 4)
    offsets = rng.randint(-translate, translate + 1, size=(n, 2))
    return windows(padded, translate + offsets[:, 0], translate + offsets[:, 1], size, mirror), offsets
