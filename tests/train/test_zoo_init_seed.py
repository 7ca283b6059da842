"""ModelSpec.init_seed: the initial weights drawn from another seed than the shuffling, keys unchanged without it."""

import torch

from pyadvt.models import build
from pyadvt.train.zoo import ModelSpec


def test_init_seed_draws_the_weights_of_manual_seed_then_build():
    torch.manual_seed(1234)
    ref = build("mlp", in_shape=(1, 8, 8), num_classes=5, hidden=[16])
    spec = ModelSpec("mlp", {"in_shape": [1, 8, 8], "num_classes": 5, "hidden": [16]}, seed=0, init_seed=1234)
    for a, b in zip(ref.state_dict().values(), spec.build().state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    plain = ModelSpec("mlp", {"in_shape": [1, 8, 8], "num_classes": 5, "hidden": [16]}, seed=0)
    assert not torch.equal(plain.build().state_dict()["head.weight"], ref.state_dict()["head.weight"])


def test_init_seed_enters_the_spec_only_when_given():
    plain = ModelSpec("mlp", {"hidden": [8]}, seed=3)
    assert "init_seed" not in plain.to_dict()  # keys of specs without it are the ones stored before
    seeded = ModelSpec("mlp", {"hidden": [8]}, seed=3, init_seed=7)
    assert seeded.to_dict()["init_seed"] == 7 and ModelSpec.from_dict(seeded.to_dict()) == seeded
    assert ModelSpec.from_dict(plain.to_dict()) == plain


def test_init_seed_must_be_an_int():
    import pytest

    with pytest.raises(TypeError, match="init_seed"):
        ModelSpec("mlp", init_seed=1.5)
