"""From uint8 images to normalised NDArray batches.

Normalisation: pixels / 255, then per-channel mean and std of the training images in use (the
selected classes only). Batching: the whole split sits in one NDArray; a batch is a `take` of
shuffled indices, so there is no per-batch Python or numpy work beyond slicing an index array.
"""
from dataclasses import dataclass

import mxnet as mx
import numpy as np

EVAL_ORDER_SEED = 0  # fixed order of the test set, the same for every run (see prepare)
PAD = 4  # pixels of zero padding per side before the random crop (GluonCV's CIFAR recipe)


@dataclass
class Dataset:
    """Normalised data ready for training. Arrays live on the CPU; labels are float32."""
    train_x: mx.nd.NDArray
    train_y: mx.nd.NDArray
    test_x: mx.nd.NDArray
    test_y: mx.nd.NDArray
    class_names: list
    mean: np.ndarray  # per channel, on the [0, 1] scale
    std: np.ndarray

    @property
    def num_classes(self):
        return len(self.class_names)


def select_classes(x, y, classes):
    """Keeps the images of `classes` and remaps their labels to 0..len(classes)-1 in that order."""
    lookup = np.full(256, -1, dtype=np.int32)
    lookup[np.asarray(classes)] = np.arange(len(classes))
    keep = lookup[y] >= 0
    return x[keep], lookup[y[keep]]


def channel_stats(images):
    """Exact per-channel mean and (population) std of uint8 NCHW images on the [0, 1] scale.

    Works on a 256-bin histogram per channel, so it needs no float copy of the images.
    """
    values = np.arange(256, dtype=np.float64) / 255.0
    mean, std = [], []
    for c in range(images.shape[1]):
        counts = np.bincount(images[:, c].ravel(), minlength=256)
        n = counts.sum()
        m = (counts * values).sum() / n
        mean.append(m)
        std.append(np.sqrt((counts * (values - m) ** 2).sum() / n))
    return np.array(mean, dtype=np.float32), np.array(std, dtype=np.float32)


def normalize(images, mean, std):
    """uint8 NCHW -> float32 NCHW, (x / 255 - mean) / std per channel."""
    x = images.astype(np.float32) / 255.0
    x -= mean.reshape(1, -1, 1, 1)
    x /= std.reshape(1, -1, 1, 1)
    return x


def network_input(images, mean, std, size=None):
    """uint8 NCHW images as a network sees them in evaluation and prediction: the central
    size x size window (the 28x28 Inception networks), normalised with the training statistics."""
    if size is not None and size != images.shape[2]:
        images = center_crop(images, size)
    return normalize(images, mean, std)


def eval_order(n):
    """The fixed mixed order in which a test set of n images is evaluated, in every run."""
    return np.random.RandomState(EVAL_ORDER_SEED).permutation(n)


def prepare(train_x, train_y, test_x, test_y, classes, class_names, input_size=None):
    """Selects classes, normalises with training statistics and returns a Dataset.

    The training images stay whole, for the training augmentation to crop; the test set is
    test_set's.
    """
    train_x, train_y = select_classes(train_x, train_y, classes)
    mean, std = channel_stats(train_x)
    test_x, test_y = test_set(test_x, test_y, classes, mean, std, input_size)
    return Dataset(
        train_x=mx.nd.array(normalize(train_x, mean, std)),
        train_y=mx.nd.array(train_y, dtype=np.float32),
        test_x=mx.nd.array(test_x), test_y=mx.nd.array(test_y, dtype=np.float32),
        class_names=[class_names[c] for c in classes], mean=mean, std=std)


def test_set(test_x, test_y, classes, mean, std, input_size=None):
    """(network input, labels) of the test images of `classes`: relabelled 0..k-1, in a fixed
    random order, cropped to input_size (None: as they are) and normalised with the training
    statistics. The one way a test set is built, for training's evaluation and for prediction.

    The order matters: the spec's BatchNorm normalises each batch with its own statistics, so a
    class-sorted test set would give single-class batches.
    """
    test_x, test_y = select_classes(test_x, test_y, classes)
    order = eval_order(len(test_y))
    return network_input(test_x[order], mean, std, input_size), test_y[order]


def batch_bounds(n, batch_size, min_size=1, drop_last=False):
    """(start, stop) of each batch: batch_size images each, the last one smaller.

    A remainder of fewer than min_size images joins the batch before it instead: with several
    devices every device needs at least one image of every batch. drop_last leaves the
    remainder out (asynchronous workers need equal batches; the shuffle changes what is left).
    """
    if drop_last and n >= batch_size:
        n -= n % batch_size
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] < min_size:
        starts.pop()
    return list(zip(starts, starts[1:] + [n]))


def num_batches(n, batch_size, min_size=1, drop_last=False):
    return len(batch_bounds(n, batch_size, min_size, drop_last))


def batches(x, y, batch_size, rng=None, min_size=1, drop_last=False):
    """Yields (x, y) batches covering every example once; shuffled when rng is given.

    The last batch is smaller when batch_size does not divide the data: it is kept, as in the
    spec's reference, so every image is seen every epoch (unless drop_last).
    """
    if rng is not None:
        for _, batch_x, batch_y in shuffled_batches(x, y, batch_size, rng, min_size, drop_last):
            yield batch_x, batch_y
        return
    for start, stop in batch_bounds(x.shape[0], batch_size, min_size, drop_last):
        yield x[start:stop], y[start:stop]


def shuffled_batches(x, y, batch_size, rng, min_size=1, drop_last=False, limit=None):
    """Yields (indices, x, y): the batches of a fresh random order (as batches), each with the
    indices (numpy) of its images in x; at most `limit` of them (an epoch cut short)."""
    order = rng.permutation(x.shape[0])
    for start, stop in batch_bounds(x.shape[0], batch_size, min_size, drop_last)[:limit]:
        index = mx.nd.array(order[start:stop], dtype=np.int32)
        yield order[start:stop], mx.nd.take(x, index), mx.nd.take(y, index)


def augment(x, mean, std, rng, pad=PAD, size=None):
    """GluonCV's CIFAR training augmentation for a batch of normalised NCHW images, each image
    drawn on its own: pad `pad` black pixels per side, crop a random window of `size` pixels
    (None: the original size), flip it horizontally with probability 1/2. pad=0, size=28 is
    the Inception recipes' random 28x28 crop with mirror.

    The same as gluoncv.data.transforms.RandomCrop(32, pad=4) and Gluon's RandomFlipLeftRight
    before ToTensor and Normalize, done as one gather over the batch: those per-image transforms
    cost more than training on the image. Black (pixel 0) is
    -mean/std after normalisation. rng: numpy RandomState (the run's shuffling RNG).
    """
    n, c, h, w = x.shape
    out = size or h
    black = mx.nd.array((-mean / std).reshape(1, c, 1, 1), ctx=x.context)
    padded = x - black
    if pad:
        padded = mx.nd.pad(padded, mode="constant", constant_value=0,
                           pad_width=(0, 0, 0, 0, pad, pad, pad, pad))
    hp, wp = h + 2 * pad, w + 2 * pad
    top, left = rng.randint(0, hp - out + 1, size=n), rng.randint(0, wp - out + 1, size=n)
    flip = rng.rand(n) < 0.5
    return windows(padded, top, left, out, flip) + black


@dataclass(frozen=True)
class PadCropFlip:
    """augment() as a training augmentation: called with each batch, the indices of its images,
    the epoch and the run's rng (as every training augmentation is; this one needs the rng only)."""
    mean: np.ndarray
    std: np.ndarray
    pad: int = PAD
    size: int = None

    def __call__(self, x, indices, epoch, rng):
        return augment(x, self.mean, self.std, rng, self.pad, self.size)


def windows(images, top, left, size, mirror):
    """The size x size window of each of the NCHW images whose corner is at (top[i], left[i]),
    mirrored left-right where mirror[i]: as one gather over the batch (numpy index arrays)."""
    n, c, h, w = images.shape
    steps = np.arange(size, dtype=np.int32)  # int32 throughout: the index array is what take reads
    rows = top[:, None].astype(np.int32) + steps
    cols = left[:, None].astype(np.int32) + np.where(mirror[:, None], steps[::-1], steps)
    planes = (np.arange(n, dtype=np.int32)[:, None] * c + np.arange(c, dtype=np.int32)) * h  # (n, c)
    index = ((planes[:, :, None] + rows[:, None, :]) * w)[:, :, :, None] + cols[:, None, None, :]
    crops = mx.nd.take(images.reshape((-1,)), mx.nd.array(index.ravel(), ctx=images.context, dtype=np.int32))
    return crops.reshape((n, c, size, size))


def center_crop(x, size):
    """The central size x size window of NCHW images (the Inception recipes' test crop)."""
    top, left = (x.shape[2] - size) // 2, (x.shape[3] - size) // 2
    return x[:, :, top:top + size, left:left + size]
