"""airbench94's augmentation (data/alternating.py): alternating flip and translations of up to
2 pixels, checked image by image against numpy."""
import mxnet as mx
import numpy as np

from data.alternating import AlternatingFlip, translate_and_mirror


def test_odd_epochs_mirror_every_image_the_even_epochs_do_not_and_even_epochs_agree():
    flips = AlternatingFlip(1000, np.random.RandomState(7))
    everyone = np.arange(1000)
    even = [flips.mirrored(everyone, epoch) for epoch in (0, 2, 4)]
    odd = [flips.mirrored(everyone, epoch) for epoch in (1, 3)]
    assert all(np.array_equal(e, even[0]) for e in even)  # the same images, every even epoch
    assert all(np.array_equal(o, ~even[0]) for o in odd)  # the others, every odd epoch
    assert 400 < even[0].sum() < 600  # each image with probability 1/2
    again = AlternatingFlip(1000, np.random.RandomState(7))
    assert np.array_equal(again.mirrored(everyone, 0), even[0])  # fixed by the seed
    assert np.array_equal(flips.mirrored(np.array([3, 9]), 1), ~even[0][[3, 9]])


def test_translations_stay_within_2_pixels_and_cut_the_reflected_image():
    rng = np.random.RandomState(0)
    n = 200
    x = rng.normal(size=(n, 3, 32, 32)).astype(np.float32)
    mirror = rng.rand(n) < 0.5
    out, offsets = translate_and_mirror(mx.nd.array(x), np.random.RandomState(1), mirror)
    out = out.asnumpy()
    assert np.abs(offsets).max() == 2 and len({tuple(o) for o in offsets}) == 25  # all offsets occur
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), mode="reflect")
    for i in range(n):
        dy, dx = offsets[i]
        window = padded[i, :, 2 + dy:34 + dy, 2 + dx:34 + dx]
        np.testing.assert_array_equal(out[i], window[:, :, ::-1] if mirror[i] else window)
