"""The model-output contract (pyadvt.models.output): one tensor from any model output, checks up front,
double backward through attention and Hardsigmoid.

Every pyadvt result on a tuple / dict / ModelOutput-returning model must equal the result on the
plain-tensor model that shares its parameters (the reference is pyadvt on a plain model, which the
rest of the suite checks against independent references).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pyadvt.attacks import DI, DIM, FGSM, MIFGSM, PGD, RepresentationAttack, VirtualAdversarialAttack
from pyadvt.data import TensorData
from pyadvt.metrics import (as_score, gradient_similarity, singular_value_ratio, smoothness, tau1, tau2,
                            attack_transferability)
from pyadvt.models import select_output
from pyadvt.models.output import check_model_ready, model_contract, model_logits, twice_differentiable
from pyadvt.train import evaluate, fit
from pyadvt.utils.modes import evaluating
from pyadvt.utils.validation import InvalidTypeError, InvalidValueError


class Core(nn.Module):
    def __init__(self, classes=4):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.fc = nn.Linear(3 * 16, classes)

    def forward(self, x):
        return self.fc(torch.tanh(self.conv(x)).flatten(1))


class HFLike(OrderedDict):
    """What transformers' ModelOutput is: an ordered dict with attribute access."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclasses.dataclass
class Out:
    loss: object
    scores: torch.Tensor


class Returns(nn.Module):
    def __init__(self, core, kind):
        super().__init__()
        self.core, self.kind = core, kind

    def forward(self, x):
        z = self.core(x)
        return {"tuple": lambda: (z, z.detach() * 0 - 1), "list": lambda: [z, "aux"],
                "dict": lambda: {"hidden": x.flatten(1)[:, :2], "logits": z},
                "hf": lambda: HFLike(logits=z, hidden_states=None),
                "dataclass": lambda: Out(None, z)}[self.kind]()


KINDS = ["tuple", "list", "dict", "hf", "dataclass"]


def _data(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 4, 4, generator=g), torch.randint(0, 4, (n,), generator=g)


# --------------------------------------------------------------------------- model_logits


def test_model_logits_rules():
    t = torch.arange(6.0).view(2, 3)
    assert model_logits(t) is t
    assert model_logits(((t, 1), 2)) is t
    assert model_logits({"a": 1, "b": t, "c": -t}) is t  # no 'logits': the first tensor value
    assert model_logits({"x": -t, "logits": t}) is t
    assert model_logits(HFLike(loss=None, logits=t)) is t
    assert model_logits(type("O", (), {"logits": t})()) is t
    assert model_logits(Out(None, t)) is t
    assert model_logits({"a": t, "b": -t}, output="b").equal(-t)
    assert model_logits((t, -t), output=1).equal(-t)
    assert model_logits(Out(1, t), output="scores") is t
    assert model_logits({"a": t}, output=lambda o: 2 * o["a"]).equal(2 * t)


@pytest.mark.parametrize("out, match", [
    (None, "returned a NoneType"),
    ({"a": 1}, "returned a dict with keys \\['a'\\]"),
    ((), "returned a tuple of 0"),
    ("text", "returned a str"),
])
def test_model_logits_refuses_what_holds_no_tensor(out, match):
    with pytest.raises(InvalidTypeError, match=match) as info:
        model_logits(out)
    assert "select_output" in str(info.value)


def test_bad_selectors():
    with pytest.raises(InvalidValueError, match="'output='missing'' does not select"):
        model_logits({"a": torch.zeros(1)}, output="missing")
    with pytest.raises(InvalidTypeError, match="selected a int"):
        model_logits({"a": 3}, output="a")
    with pytest.raises(InvalidTypeError, match="'output' must be"):
        select_output(nn.Identity(), 1.5)


def test_select_output_delegates_attributes():
    core = Core()
    sel = select_output(Returns(core, "dict"), "hidden")
    x, _ = _data()
    assert sel(x).equal(x.flatten(1)[:, :2])
    assert sel.core is core and sel.kind == "dict"


# --------------------------------------------------------------------------- model_contract


def test_contract_normalises_only_inside_and_leaves_no_hooks():
    net = Returns(Core(), "dict")
    x, _ = _data()
    with model_contract(net):
        with model_contract(net):  # nested: one set of hooks
            assert len(net._forward_hooks) == 1
        assert isinstance(net(x), torch.Tensor)
    assert isinstance(net(x), dict) and not net._forward_hooks and not net._forward_pre_hooks


def test_contract_survives_an_exception_and_deep_copies():
    net = Returns(Core(), "tuple")
    x, _ = _data()
    with pytest.raises(RuntimeError, match="boom"):
        with evaluating(net):
            clone = copy.deepcopy(net)  # carries the hooks: they look at the copy's own parameters
            assert isinstance(clone(x.double().float()), torch.Tensor)
            raise RuntimeError("boom")
    assert isinstance(net(x), tuple)


def test_wrong_dtype_is_refused_before_any_layer_runs():
    core = Core()
    calls = []
    core.conv.register_forward_pre_hook(lambda m, a: calls.append(1))
    x, y = _data()
    with pytest.raises(InvalidTypeError, match="dtype torch.float64 but 'model' has torch.float32 parameters.*x.float"):
        PGD(core, eps=0.1, alpha=0.05, steps=2)(x.double(), y)
    with pytest.raises(InvalidTypeError, match="torch.float64"):
        with evaluating(core):
            core(x.double())
    assert not calls


def test_autocast_allows_a_lower_precision_input():
    core = Core()
    x, _ = _data()
    with evaluating(core), torch.autocast("cpu", dtype=torch.bfloat16):
        out = core(x.bfloat16())
    assert out.shape == (4, 4)


def test_wrong_device_is_one_clear_error():
    core = Core()
    with pytest.raises(InvalidValueError, match="the input is on meta but 'model' is on cpu"):
        with evaluating(core):
            core(torch.empty(2, 1, 4, 4, device="meta"))


def test_output_without_one_row_per_input_is_refused():
    class Pooled(nn.Module):
        def __init__(self):
            super().__init__()
            self.core = Core()

        def forward(self, x):
            return self.core(x).mean(0, keepdim=True)

    x, y = _data()
    with pytest.raises(InvalidValueError, match=r"returned shape \(1, 4\) for a batch of 4 inputs"):
        FGSM(Pooled(), eps=0.1)(x, y)


# --------------------------------------------------------------------------- meta device


def _meta_core():
    with torch.device("meta"):
        return Core()


@pytest.mark.parametrize("call", [
    lambda m, x, y: PGD(m, eps=0.1, alpha=0.05, steps=2)(x, y),
    lambda m, x, y: tau1(m, m, x),
    lambda m, x, y: tau2(m, m, x, eps=0.1),
    lambda m, x, y: smoothness(m, x, y, progress=False),
    lambda m, x, y: gradient_similarity(m, m, x, y),
    lambda m, x, y: attack_transferability(m, m, x, y, x_adv=x),
    lambda m, x, y: evaluate(m, TensorData(x, y)),
    lambda m, x, y: fit(m, TensorData(x, y), epochs=1, progress=False),
], ids=["pgd", "tau1", "tau2", "smoothness", "gradient_similarity", "attack_transferability", "evaluate", "fit"])
def test_meta_device_model_is_refused_clearly(call):
    x, y = _data()
    with pytest.raises(ValueError, match="meta"):
        call(_meta_core(), x, y)


def test_check_model_ready_message():
    with pytest.raises(InvalidValueError, match="to_empty"):
        check_model_ready(_meta_core())
    check_model_ready(Core())


# --------------------------------------------------------------------------- any output, same numbers


@pytest.mark.parametrize("kind", KINDS)
def test_attacks_and_metrics_on_any_output_equal_the_tensor_model(kind):
    torch.manual_seed(0)
    core, other = Core(), Core()
    wrapped = Returns(core, kind)
    x, y = _data()
    ref_adv = PGD(core, eps=0.1, alpha=0.03, steps=3, seed=1)(x, y)
    adv = PGD(wrapped, eps=0.1, alpha=0.03, steps=3, seed=1)(x, y)
    torch.testing.assert_close(adv, ref_adv, rtol=0, atol=0)
    ens = PGD([wrapped, Returns(other, kind)], eps=0.1, alpha=0.03, steps=2)(x, y)
    torch.testing.assert_close(ens, PGD([core, other], eps=0.1, alpha=0.03, steps=2)(x, y), rtol=0, atol=0)
    torch.testing.assert_close(tau1(wrapped, other, x).per_sample, tau1(core, other, x).per_sample)
    t2, t2_ref = tau2(wrapped, other, x, eps=0.1), tau2(core, other, x, eps=0.1)
    assert t2.tau2 == pytest.approx(t2_ref.tau2, rel=1e-6) and t2.n == t2_ref.n == 4
    s, s_ref = smoothness(wrapped, x, y, progress=False), smoothness(core, x, y, progress=False)
    torch.testing.assert_close(s.values, s_ref.values)
    torch.testing.assert_close(gradient_similarity(wrapped, other, x, y).values,
                               gradient_similarity(core, other, x, y).values)
    for make in (lambda m: FGSM(m, eps=0.1), lambda m: MIFGSM(m, eps=0.1, steps=2), lambda m: DI(m, eps=0.1, steps=2),
                 lambda m: DIM(m, eps=0.1, steps=2)):
        torch.testing.assert_close(make(wrapped)(x, y), make(core)(x, y), rtol=0, atol=0)
    vat = VirtualAdversarialAttack
    torch.testing.assert_close(vat(wrapped, eps=0.1)(x), vat(core, eps=0.1)(x))
    ratk, ratk_ref = RepresentationAttack(wrapped, 0.1, steps=2), RepresentationAttack(core, 0.1, steps=2)
    torch.testing.assert_close(ratk(x), ratk_ref(x), rtol=0, atol=0)
    torch.testing.assert_close(singular_value_ratio(wrapped, x).lam, singular_value_ratio(core, x).lam)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # no 'features': the output is the representation
        assert as_score(wrapped, x, eps=0.1, steps=2).score == pytest.approx(as_score(core, x, eps=0.1, steps=2).score)
    rates, rates_ref = attack_transferability(wrapped, other, x, y, x_adv=adv), attack_transferability(core, other, x, y, x_adv=adv)
    assert repr(rates.summary()) == repr(rates_ref.summary())  # NaN rates when nothing qualifies


@pytest.mark.parametrize("kind", ["tuple", "dict", "hf"])
def test_fit_and_evaluate_on_any_output_equal_the_tensor_model(kind):
    torch.manual_seed(0)
    core = Core()
    twin = copy.deepcopy(core)
    data = TensorData(*_data(12, seed=3))
    fit(Returns(core, kind), data, epochs=2, batch_size=4, progress=False)
    fit(twin, data, epochs=2, batch_size=4, progress=False)
    for p, q in zip(core.parameters(), twin.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert evaluate(Returns(core, kind), data) == evaluate(twin, data)


# --------------------------------------------------------------------------- double backward


def _hvp(model, x, v):
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model(x).pow(2).sum(), x, create_graph=True)
    (h,) = torch.autograd.grad((g * v).sum(), x)
    return h


class Attention(nn.Module):
    def __init__(self, fused=True):
        super().__init__()
        self.proj = nn.Linear(4, 12)
        self.fused = fused

    def forward(self, x):  # x: [B, T, 4]
        q, k, v = self.proj(x).unsqueeze(1).chunk(3, dim=-1)
        if self.fused:
            out = F.scaled_dot_product_attention(q, k, v)
        else:  # the attention formula written out (independent reference)
            out = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1) @ v
        return out.flatten(1)


def test_attention_double_backward_uses_the_math_backend():
    torch.manual_seed(0)
    fused = Attention()
    plain = Attention(fused=False)
    plain.load_state_dict(fused.state_dict())
    x, v = torch.rand(2, 5, 4), torch.randn(2, 5, 4)
    with pytest.raises(RuntimeError, match="derivative for .*scaled_dot_product"):
        _hvp(fused, x, v)  # the fused CPU kernel has no double backward (why the context exists)
    with twice_differentiable(fused):
        h = _hvp(fused, x, v)
    torch.testing.assert_close(h, _hvp(plain, x, v), rtol=1e-4, atol=1e-5)


def test_hardsigmoid_gets_an_equal_twice_differentiable_formula_and_is_restored():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 6), nn.Hardsigmoid(), nn.Linear(6, 2))
    ref = nn.Sequential(net[0], nn.Identity(), net[2])
    x, v = 4 * torch.rand(5, 3) - 2, torch.randn(5, 3)
    with pytest.raises(RuntimeError, match="hardsigmoid_backward"):
        _hvp(net, x, v)
    with twice_differentiable(net):
        h = _hvp(net, x, v)
        assert torch.equal(net(x), ref[2](F.hardsigmoid(net[0](x))))  # same values

    class ClampSigmoid(nn.Module):
        def forward(self, t):
            return ((t + 3) / 6).clamp(0, 1)

    ref[1] = ClampSigmoid()
    torch.testing.assert_close(h, _hvp(ref, x, v))
    assert "forward" not in net[1].__dict__
    # first derivative and NaN exactly as torch's own kernel, boundaries +-3 included
    t = torch.tensor([-4.0, -3.0, -1.0, 0.0, 3.0, 5.0, float("nan")], requires_grad=True)
    (g_ref,) = torch.autograd.grad(F.hardsigmoid(t).nansum(), t)
    with twice_differentiable(net):
        out = net[1](t)
        (g,) = torch.autograd.grad(out.nansum(), t)
    assert torch.allclose(out, F.hardsigmoid(t), equal_nan=True, rtol=0, atol=0)
    assert torch.equal(g.nan_to_num(-1.0), g_ref.nan_to_num(-1.0))


def test_a_layer_without_second_derivative_gets_a_hint_naming_it():
    class HardSigmoidGate(nn.Module):
        def forward(self, t):
            return t * F.hardsigmoid(t)  # functional: no module to swap

    net = nn.Sequential(nn.Linear(3, 3), HardSigmoidGate())
    with pytest.raises(InvalidTypeError, match="needs second derivatives.*HardSigmoidGate.*hardsigmoid_backward"):
        with twice_differentiable(net):
            _hvp(net, torch.rand(2, 3), torch.randn(2, 3))
    x, y = torch.rand(2, 1, 1, 3), torch.tensor([0, 1])
    model = nn.Sequential(nn.Flatten(), net)
    with pytest.raises(InvalidTypeError, match="HardSigmoidGate"):
        smoothness(model, x, y, progress=False)


def test_loss_ensemble_transfer_attack_on_any_output_equals_the_tensor_models():
    from pyadvt.attacks import TransferAttack

    torch.manual_seed(0)
    a, b = Core(), Core()
    x, y = _data()
    ours = TransferAttack([Returns(a, "dict"), Returns(b, "hf")], eps=0.1, steps=2, ensemble="loss")(x, y)
    torch.testing.assert_close(ours, TransferAttack([a, b], eps=0.1, steps=2, ensemble="loss")(x, y), rtol=0, atol=0)


def test_rank_sources_on_any_output_equals_the_tensor_models():
    from pyadvt.selection import rank_sources

    torch.manual_seed(0)
    a, b, ref = Core(), Core(), Core()
    test = TensorData(*_data(6, seed=5))
    kw = dict(eps=0.1, steps=2, n_eval=6, probe=False, scores="tau1,tau2", progress=False)
    ours = rank_sources({"a": Returns(a, "tuple"), "b": Returns(b, "dict")}, Returns(ref, "hf"), test, **kw)
    plain = rank_sources({"a": a, "b": b}, ref, test, **kw)
    assert [r["name"] for r in ours["rows"]] == [r["name"] for r in plain["rows"]]
    for r, p in zip(ours["rows"], plain["rows"]):
        assert r["tau1"] == pytest.approx(p["tau1"]) and r["tau2"] == pytest.approx(p["tau2"])
