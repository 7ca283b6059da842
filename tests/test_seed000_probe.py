"""Knowledge transferability (linear probe / fine-tune) of a source's features on target data."""

import pytest
import torch

from pyadvt.data import TensorData
from pyadvt.models import build
from pyadvt.train import fit
from pyadvt.transfer import knowledge_transferability



def _task(seed, n=120):
    """Two-class task decided by the mean of the left image half (learnable from good features)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 8, 8, generator=g)
    y = (x[:, 0, :, :4].mean((1, 2)) > x[:, 0, :, 4:].mean((1, 2))).long()
    return TensorData(x, y)


def test_probe_freezes_features_and_bn_and_reports_test_metrics():
    torch.manual_seed(0)
    src = build("cnn", num_classes=4)
    before = {k: v.clone() for k, v in src.state_dict().items()}
    tr, te = _task(0), _task(1, 60)
    kt = knowledge_transferability(src, tr, te, method="probe", epochs=3, lr=0.05)
    # the source is untouched; the probed copy shares every non-head tensor with it (incl. BN stats)
    for k, v in src.state_dict().items():
        assert torch.equal(v, before[k])
    for k, v in kt.model.state_dict().items():
        if not k.startswith("head."):
            assert torch.equal(v, before[k]), k
    assert kt.model.head.out_features == 2
    assert 0 <= kt.accuracy <= 1 and kt.loss > 0 and len(kt.curve) == 3
    assert kt.curve[-1]["eval_loss"] == pytest.approx(kt.loss, rel=1e-5)


def test_finetune_changes_features_and_better_source_transfers_better():
    tr, te = _task(2, 200), _task(3, 100)
    torch.manual_seed(1)
    pretrained = build("mlp", hidden=(32,), num_classes=2)
    fit(pretrained, tr, epochs=15, lr=0.1, progress=False)
    torch.manual_seed(1)
    random_src = build("mlp", hidden=(32,), num_classes=2)
    good = knowledge_transferability(pretrained, tr, te, epochs=5)
    bad = knowledge_transferability(random_src, tr, te, epochs=5)
    assert good.accuracy > bad.accuracy and good.loss < bad.loss
    ft = knowledge_transferability(random_src, tr, te, method="finetune", epochs=2)
    assert any(not torch.equal(a, b) for (k, a), (_, b) in zip(ft.model.state_dict().items(),
                                                                random_src.state_dict().items())
               if not k.startswith("head."))
    with pytest.raises(ValueError, match="method"):
        knowledge_transferability(random_src, tr, te, method="zero-shot")
