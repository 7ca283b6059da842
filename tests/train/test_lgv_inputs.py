"""collect_lgv names its data requirement instead of failing with an AttributeError."""

import pytest
import torch
from torch import nn

from pyadvt.train import collect_lgv


def test_collect_lgv_refuses_a_dataset_with_a_hint():
    ds = torch.utils.data.TensorDataset(torch.rand(8, 1, 4, 4), torch.arange(8) % 2)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    with pytest.raises(TypeError, match="to_tensor_data"):
        collect_lgv(net, ds, epochs=1, per_epoch=1)
