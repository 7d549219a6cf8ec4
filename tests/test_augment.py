"""bnlib.augment.random_crop_flip / RandomCropFlip against torchvision's pad, crop and flip.

The oracle is torchvision.transforms.v2.functional applied to one image at a time, with the
offsets and flips that the same generator state draws.
"""
import copy

import pytest
import torch
from torch import nn
from torchvision.transforms.v2 import functional as TF

from bnlib.augment import RandomCropFlip, random_crop_flip


def images(n=6, c=3, h=7, w=5, seed=0):
    return torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(seed))


def oracle(x, padding, flip, seed):
    """One image at a time with torchvision, from the draws of a generator seeded with seed."""
    n, _, h, w = x.shape
    g = torch.Generator().manual_seed(seed)
    if padding:
        dy, dx = torch.randint(0, 2 * padding + 1, (2, n), generator=g)
    mirrored = torch.rand(n, generator=g) < 0.5 if flip else torch.zeros(n, dtype=torch.bool)
    out = []
    for i in range(n):
        img = x[i]
        if padding:
            img = TF.crop(TF.pad(img, [padding]), int(dy[i]), int(dx[i]), h, w)
        out.append(TF.horizontal_flip(img) if mirrored[i] else img)
    return torch.stack(out)


@pytest.mark.parametrize("padding,flip", [(4, True), (2, True), (1, False), (0, True), (3, False)])
def test_matches_torchvision_image_by_image(padding, flip):
    x = images(n=40, h=7, w=5)
    g = torch.Generator().manual_seed(3)
    out = random_crop_flip(x, padding, flip, generator=g)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(out, oracle(x, padding, flip, seed=3))


def test_offsets_and_flips_are_uniform():
    """Each image's shift is uniform on {-p..p}² and its flip has probability 1/2."""
    p, n = 2, 20000
    x = torch.zeros(n, 1, 5, 5)
    x[:, 0, 2, 2] = 1  # a single bright pixel in the middle: where it lands is the offset
    out = random_crop_flip(x, p, flip=False, generator=torch.Generator().manual_seed(0))
    where = out.view(n, -1).argmax(1)  # every image keeps its pixel (|shift| <= 2 <= 2)
    row, col = where // 5, where % 5
    counts = torch.bincount(row * 5 + col, minlength=25).view(5, 5).float() / n
    assert torch.all((counts - 1 / 25).abs() < 0.006), counts
    ramp = torch.arange(5.0).expand(n, 1, 5, 5)  # left-right ramp: flipped iff first column is 4
    flipped = random_crop_flip(ramp, 0, flip=True, generator=torch.Generator().manual_seed(1))
    share = (flipped[:, 0, 0, 0] == 4).float().mean()
    assert abs(share - 0.5) < 0.015, share


def test_generator_makes_it_reproducible():
    x = images()
    a = random_crop_flip(x, 4, generator=torch.Generator().manual_seed(5))
    b = random_crop_flip(x, 4, generator=torch.Generator().manual_seed(5))
    c = random_crop_flip(x, 4, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.manual_seed(7)  # no generator: torch's global one, as nn.Dropout
    d = random_crop_flip(x, 4)
    torch.manual_seed(7)
    assert torch.equal(d, random_crop_flip(x, 4))


def test_identity_cases_and_input_untouched():
    x = images()
    before = x.clone()
    out = random_crop_flip(x, 0, flip=False)
    assert torch.equal(out, x) and out is not x
    random_crop_flip(x, 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, before)


def test_gradient_flows_back_to_the_kept_pixels():
    """A crop moves pixels and pads zeros: the gradient is 1 on every pixel that stays in view."""
    x = images(n=3).double().requires_grad_()
    out = random_crop_flip(x, 1, generator=torch.Generator().manual_seed(0))
    out.sum().backward()
    assert set(x.grad.unique().tolist()) <= {0.0, 1.0}
    assert torch.allclose(x.grad.sum(), (out != 0).sum().double())  # randn: no exact zeros
    torch.autograd.gradcheck(
        lambda t: random_crop_flip(t, 2, generator=torch.Generator().manual_seed(1)),
        (images(n=2, h=4, w=4).double().requires_grad_(),))


def test_module_acts_in_training_mode_only():
    x = images()
    aug = RandomCropFlip(4, generator=torch.Generator().manual_seed(2))
    out = aug(x)
    assert torch.equal(out, oracle(x, 4, True, seed=2))
    assert aug.eval()(x) is x
    model = nn.Sequential(RandomCropFlip(2), nn.Flatten())
    assert torch.equal(model.eval()(x), x.flatten(1))
    assert "padding=4, flip=True" in repr(aug)


def test_deepcopy_carries_the_stream():
    aug = RandomCropFlip(4, generator=torch.Generator().manual_seed(2))
    aug(images())  # advance the stream
    twin = copy.deepcopy(aug)
    x = images(seed=1)
    assert torch.equal(aug(x), twin(x))


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_bad_padding(bad):
    with pytest.raises(ValueError, match="expected padding"):
        RandomCropFlip(bad)
    with pytest.raises(ValueError, match="expected padding"):
        random_crop_flip(images(), bad)


def test_bad_shape():
    with pytest.raises(ValueError, match=r"expected a batch of images \(N, C, H, W\) \(got shape \(3, 4\)\)"):
        random_crop_flip(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="expected a batch of images"):
        RandomCropFlip().eval()(torch.zeros(3, 4))
