"""adapt_images: resize + center-crop equal to torchvision's tensor transforms, channel conversion equal to PIL's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pyadvt.data import TensorData
from pyadvt.data.adapt import AdaptedImages, adapt_images


@pytest.mark.parametrize("hw, size", [((28, 28), 32), ((40, 30), 16), ((17, 53), 24), ((32, 32), 32)])
def test_resize_crop_matches_torchvision(hw, size):
    TF = pytest.importorskip("torchvision.transforms.functional")
    x = torch.rand(2, 3, *hw)
    ref = TF.center_crop(TF.resize(x, size, antialias=True), size)
    torch.testing.assert_close(adapt_images(x, size), ref.clamp(0, 1), atol=1e-6, rtol=0)


def test_channels():
    rgb = np.random.default_rng(0).integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
    x = torch.from_numpy(rgb).permute(2, 0, 1).float().div(255).unsqueeze(0)
    gray = np.asarray(Image.fromarray(rgb).convert("L")).astype(np.float32) / 255
    torch.testing.assert_close(adapt_images(x, channels=1)[0, 0], torch.from_numpy(gray), atol=1 / 255, rtol=0)
    g = torch.rand(2, 1, 4, 4)
    assert torch.equal(adapt_images(g, channels=3), g.expand(-1, 3, -1, -1))
    with pytest.raises(ValueError, match="'channels'"):
        adapt_images(g, channels=2)


def test_adapted_dataset_items():
    data = TensorData(torch.rand(3, 1, 8, 8), torch.tensor([0, 1, 2]))
    ad = AdaptedImages(data, size=12, channels=3)
    x, y = ad[1]
    assert x.shape == (3, 12, 12) and int(y) == 1 and len(ad) == 3 and ad.num_classes == 3
    torch.testing.assert_close(x, adapt_images(data.x[1:2], 12, 3)[0])
