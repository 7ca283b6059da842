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


def _ce_and_acc_by_hand(model, data):
    """Mean cross-entropy and top-1 accuracy of ``model`` (eval mode) on ``data``, written out."""
    model.eval()
    with torch.no_grad():
        logits = model(data.x).double()
    logp = logits - logits.logsumexp(1, keepdim=True)
    ce = -logp[torch.arange(len(data.y)), data.y].mean()
    return float(ce), float((logits.argmax(1) == data.y).double().mean())


def test_knowledge_transferability_reports_the_target_test_split():
    # seed 000 §3.1/§4.1: knowledge transferability = final loss / accuracy of the transferred model on
    # the target *test* data (never its training split)
    torch.manual_seed(0)
    src = build("cnn", num_classes=4)
    tr, te = _task(4, 80), _task(5, 40)
    kt = knowledge_transferability(src, tr, te, method="probe", epochs=2, lr=0.05)
    test_loss, test_acc = _ce_and_acc_by_hand(kt.model, te)
    train_loss, train_acc = _ce_and_acc_by_hand(kt.model, tr)
    assert kt.loss == pytest.approx(test_loss, rel=1e-5) and kt.accuracy == pytest.approx(test_acc)
    assert abs(train_loss - test_loss) > 1e-3  # the two splits are distinguishable here


def test_probe_bn_statistics_frozen_by_default_and_drift_only_when_asked():
    # docs/theory.md §4 / seed 000 linear probe: features and BatchNorm running statistics stay frozen; the
    # authors' code let the statistics drift (legacy_bn_drift=True) - the head still is the only
    # trainable part in both cases
    torch.manual_seed(0)
    src = build("cnn", num_classes=4)
    tr, te = _task(6, 64), _task(7, 32)
    bn = [k for k in src.state_dict() if k.endswith("running_mean") or k.endswith("running_var")]
    assert bn
    frozen = knowledge_transferability(src, tr, te, method="probe", epochs=1)
    drift = knowledge_transferability(src, tr, te, method="probe", epochs=1, legacy_bn_drift=True)
    ref = src.state_dict()
    assert all(torch.equal(frozen.model.state_dict()[k], ref[k]) for k in bn)
    assert any(not torch.equal(drift.model.state_dict()[k], ref[k]) for k in bn)
    # weights of the frozen features are untouched either way
    for k, v in ref.items():
        if not k.startswith("head.") and k not in bn and "num_batches_tracked" not in k:
            assert torch.equal(drift.model.state_dict()[k], v), k
