"""Each suite attack without a torchattacks counterpart against an independent re-implementation of its
update (docs/theory.md §10.4-§10.14) written here, with the same per-sample random draws injected
(regenerated from :func:`pyadvt.utils.per_sample_rand` and the attack's stream numbers)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.fft
import scipy.ndimage
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import pyadvt.attacks as A
from pyadvt.attacks.composed import SLOT_INNER, SLOT_NEIGHBOURS, SLOT_NOISE, SLOT_SETUP, stream
from pyadvt.utils import per_sample_rand

TOL = dict(atol=1e-5, rtol=0)
SEED = 0


def draws(x0, shape, st, dist="uniform"):
    return per_sample_rand(x0, shape, SEED, None, stream=st, distribution=dist, dtype=torch.float64).to(x0.dtype)


def ce_grad(model, x, y):
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="sum")
    return torch.autograd.grad(loss, x)[0]


def project(x, x0, eps):
    return torch.clamp(x0 + torch.clamp(x - x0, -eps, eps), 0.0, 1.0)


def mi(g, m, mu):
    return mu * m + g / g.abs().mean(dim=(1, 2, 3), keepdim=True)


def small_cnn(seed=0, c=3):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(c, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1),
                        nn.Tanh(), nn.Flatten(), nn.Linear(6 * 144, 10))
    with torch.no_grad():
        net[1].running_mean.uniform_(-0.2, 0.2)
        net[1].running_var.uniform_(0.5, 2.0)
    return net.eval()


def images(n=4, c=3, size=12, seed=2):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, size, size, generator=g), torch.randint(0, 10, (n,), generator=g)


def resnet18(seed=0):
    torch.manual_seed(seed)
    net = torchvision.models.resnet18(num_classes=10)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return net.eval()


# ---------------------------------------------------------------------------------------- VMI / VNI
@pytest.mark.parametrize("nesterov", [False, True])
def test_variance_tuning_equals_reference(nesterov):
    net = small_cnn()
    x0, y = images()
    eps, steps, N, beta, mu = 16 / 255, 4, 3, 1.5, 1.0
    alpha = eps / steps
    cls = A.VNIFGSM if nesterov else A.VMIFGSM
    ours = cls(net, eps, None, steps, N=N, beta=beta)(x0, y)
    x, m, v = x0.clone(), torch.zeros_like(x0), torch.zeros_like(x0)
    for t in range(steps):
        g = ce_grad(net, x + alpha * mu * m if nesterov else x, y)
        m = mi(g + v, m, mu)
        r = (2 * draws(x0, (N, 3, 12, 12), stream(0, t, SLOT_NEIGHBOURS)) - 1) * beta * eps
        nb = torch.stack([ce_grad(net, x + r[:, i], y) for i in range(N)]).mean(0)
        v = nb - g
        x = project(x + alpha * m.sign(), x0, eps)
    torch.testing.assert_close(ours, x, **TOL)


# ---------------------------------------------------------------------------------------- Admix
def test_admix_equals_reference():
    net = small_cnn()
    x0, y = images()
    pool = images(5, seed=7)[0]
    eps, steps, eta, m1, m2 = 16 / 255, 3, 0.2, 3, 2
    alpha = eps / steps
    ours = A.Admix(net, eps, None, steps, eta=eta, m1=m1, m2=m2, pool=pool)(x0, y)
    x, m = x0.clone(), torch.zeros_like(x0)
    for t in range(steps):
        u = draws(x0, (1, m2), stream(0, t, 0))[:, 0]            # [n, m2]
        g = torch.zeros_like(x0)
        for j in range(m2):
            partner = pool[(u[:, j].double() * pool.shape[0]).floor().long()]
            for i in range(m1):
                xl = x.detach().requires_grad_(True)
                loss = F.cross_entropy(net((xl + eta * partner) / 2 ** i), y, reduction="sum")
                g += torch.autograd.grad(loss, xl)[0]
        m = mi(g / (m1 * m2), m, 1.0)
        x = project(x + alpha * m.sign(), x0, eps)
    torch.testing.assert_close(ours, x, **TOL)


# ---------------------------------------------------------------------------------------- SSA
def test_ssa_equals_reference_with_scipy_dct():
    net = small_cnn()
    x0, y = images()
    eps, steps, N, rho = 16 / 255, 3, 3, 0.5
    alpha = eps / steps
    ours = A.SSA(net, eps, None, steps, N=N, rho=rho)(x0, y)
    x = x0.clone()
    for t in range(steps):
        xi = draws(x0, (1, N, 3, 12, 12), stream(0, t, 0), "normal")[:, 0]
        mask = 1 - rho + 2 * rho * draws(x0, (1, N, 3, 12, 12), stream(0, t, 1))[:, 0]
        g = torch.zeros_like(x0)
        for n in range(N):
            spec = scipy.fft.dctn((x + eps * xi[:, n]).double().numpy(), type=2, norm="ortho", axes=(-2, -1))
            sim = scipy.fft.idctn(spec * mask[:, n].double().numpy(), type=2, norm="ortho", axes=(-2, -1))
            g += ce_grad(net, torch.from_numpy(sim).float(), y)
        x = project(x + alpha * (g / N).sign(), x0, eps)
    torch.testing.assert_close(ours, x, **TOL)


# ---------------------------------------------------------------------------------------- BSR
def _lengths(v, total):
    parts = np.floor(v / v.sum() * total + 0.5).astype(int)
    parts[parts.argmax()] += total - parts.sum()
    return parts


def bsr_reference(img: np.ndarray, u: np.ndarray, n: int, max_angle: float) -> np.ndarray:
    """One image [C, H, W] (H == W here) and its uniforms, with scipy's bilinear interpolation."""
    cols = u[0] >= 0.5
    if cols:
        img = img.transpose(0, 2, 1)
    C, H, W = img.shape
    lens = _lengths(1 + u[1:1 + n], H)
    order = np.argsort(u[1 + n:1 + 2 * n], kind="stable")
    angles = (2 * u[1 + 2 * n:1 + 3 * n] - 1) * math.radians(max_angle)
    len2 = u[1 + 3 * n:1 + 3 * n + n * n].reshape(n, n)
    ord2 = u[1 + 3 * n + n * n:].reshape(n, n)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    strips = []
    for q in range(n):
        s = order[q]
        strip = img[:, starts[s]:starts[s] + lens[s]]
        L = strip.shape[1]
        cy, cx = (L - 1) / 2, (W - 1) / 2
        rr, cc = np.meshgrid(np.arange(L), np.arange(W), indexing="ij")
        th = angles[s]
        sy = np.cos(th) * (rr - cy) + np.sin(th) * (cc - cx) + cy
        sx = -np.sin(th) * (rr - cy) + np.cos(th) * (cc - cx) + cx
        rot = np.stack([scipy.ndimage.map_coordinates(strip[c], [sy, sx], order=1, mode="grid-constant", cval=0.0)
                        for c in range(C)])
        l2 = _lengths(1 + len2[q], W)
        o2 = np.argsort(ord2[q], kind="stable")
        st2 = np.concatenate([[0], np.cumsum(l2)[:-1]])
        strips.append(np.concatenate([rot[:, :, st2[b]:st2[b] + l2[b]] for b in o2], axis=2))
    out = np.concatenate(strips, axis=1)
    return out.transpose(0, 2, 1) if cols else out


@pytest.mark.parametrize("max_angle", [0.0, 24.0])
def test_bsr_transform_equals_scipy_reference(max_angle):
    n, copies = 3, 4
    t = A.transforms.BlockShuffleRotate(n, copies, max_angle)
    x = torch.rand(3, 2, 12, 12, dtype=torch.float64)
    u = torch.rand(3, copies, 1 + 3 * n + 2 * n * n, dtype=torch.float64)
    ours = t(x, [u], None).reshape(copies, 3, 2, 12, 12)
    for i in range(3):
        for c in range(copies):
            ref = bsr_reference(x[i].numpy(), u[i, c].numpy(), n, max_angle)
            np.testing.assert_allclose(ours[c, i].numpy(), ref, atol=1e-10)


def test_bsr_attack_averages_the_copies_gradients():
    net = small_cnn()
    x0, y = images(3)
    eps, steps, N = 16 / 255, 2, 3
    ours = A.BSR(net, eps, None, steps, N=N)(x0, y)
    x, m = x0.clone(), torch.zeros_like(x0)
    one = A.transforms.BlockShuffleRotate(3, 1, 24.0)
    for t in range(steps):
        u = draws(x0, (1, N, 28), stream(0, t, 0))[:, 0]          # [n, N, 28]
        g = torch.zeros_like(x0)
        for c in range(N):
            xl = x.detach().requires_grad_(True)
            rows = one(xl, [u[:, c:c + 1]], None)
            g += torch.autograd.grad(F.cross_entropy(net(rows), y, reduction="sum"), xl)[0]
        m = mi(g / N, m, 1.0)
        x = project(x + eps / steps * m.sign(), x0, eps)
    torch.testing.assert_close(ours, x, **TOL)


# ---------------------------------------------------------------------------------------- SGM
def test_sgm_equals_the_authors_relu_hooks_on_resnet18():
    """Reference: TransferAttack's / the authors' hooks (ReLU grad_in times gamma, skipping layer1.0)."""
    net = resnet18()
    x0, y = images(2, size=32)
    eps, steps, gamma = 16 / 255, 3, 0.2
    ours = A.SGM(net, eps, None, steps, gamma=gamma)(x0, y)
    ref_net = resnet18()
    handles = []
    for name, mod in ref_net.named_modules():
        if isinstance(mod, nn.ReLU):
            mod.inplace = False
            if "relu" in name and "layer1.0.relu" not in name:
                handles.append(mod.register_full_backward_hook(lambda m, gi, go: (gi[0] * gamma,)))
    x, m = x0.clone(), torch.zeros_like(x0)
    for _ in range(steps):
        m = mi(ce_grad(ref_net, x, y), m, 1.0)
        x = project(x + eps / steps * m.sign(), x0, eps)
    for h in handles:
        h.remove()
    torch.testing.assert_close(ours, x, **TOL)


# ---------------------------------------------------------------------------------------- LinBP
class TwoBlocks(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.layer1 = torchvision.models.resnet.BasicBlock(4, 4)
        self.layer2 = torchvision.models.resnet.BasicBlock(4, 4)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
        with torch.no_grad():
            for mod in self.modules():
                if isinstance(mod, nn.BatchNorm2d):
                    mod.running_mean.uniform_(-0.1, 0.1)
                    mod.weight.uniform_(0.5, 1.5)
                    mod.bias.uniform_(-0.3, 0.3)

    def forward(self, x):
        return self.head(self.layer2(self.layer1(self.stem(x))))


def linbp_reference_grad(net: TwoBlocks, x, y, lam=1.0):
    """Manual backward: layer2's residual branch linear (ReLU removed: BN in eval is affine), renormalised."""
    b = net.layer2
    xl = x.detach().requires_grad_(True)
    z = net.layer1(net.stem(xl))
    zd = z.detach().requires_grad_(True)
    pre = zd + b.bn2(b.conv2(F.relu(b.bn1(b.conv1(zd)))))
    loss = F.cross_entropy(net.head(F.relu(pre)), y, reduction="sum")
    (g_pre,) = torch.autograd.grad(loss, pre, retain_graph=True)
    zt = z.detach().requires_grad_(True)
    (g_true,) = torch.autograd.grad(b.bn2(b.conv2(F.relu(b.bn1(b.conv1(zt))))), zt, g_pre)
    zl = z.detach().requires_grad_(True)
    (g_lin,) = torch.autograd.grad(b.bn2(b.conv2(b.bn1(b.conv1(zl)))), zl, g_pre)
    scale = lam * g_true.flatten(1).norm(dim=1) / g_lin.flatten(1).norm(dim=1)
    g_z = g_pre + scale.view(-1, 1, 1, 1) * g_lin
    return torch.autograd.grad(z, xl, g_z)[0]


def test_linbp_equals_manual_linear_backward_with_its_noise():
    net = TwoBlocks().eval()
    x0, y = images(3, size=8)
    eps, steps = 16 / 255, 3
    ours = A.LinBP(net, eps, None, steps, layer="layer2")(x0, y)
    x = x0.clone()
    for t in range(steps):
        u = draws(x0, (3, 8, 8), stream(0, t, SLOT_NOISE))
        g = linbp_reference_grad(net, x + (2 * u - 1) * eps, y)
        x = project(x + eps / steps * g.sign(), x0, eps)
    torch.testing.assert_close(ours, x, **TOL)


def test_linbp_gradient_differs_from_plain_backprop():
    """Companion: the reference is not vacuous - LinBP's gradient is not the ordinary one."""
    net = TwoBlocks().eval()
    x0, y = images(3, size=8)
    assert not torch.allclose(linbp_reference_grad(net, x0, y), ce_grad(net, x0, y), atol=1e-4)


# ---------------------------------------------------------------------------------------- ILA / FIA / NAA
def tapped(net, layer):
    store = {}
    mod = dict(net.named_modules())[layer]
    handle = mod.register_forward_hook(lambda m, i, o: store.__setitem__("f", o))
    return store, handle


def test_ila_equals_reference_on_resnet18():
    net = resnet18()
    x0, y = images(2, size=32)
    eps, steps, layer = 16 / 255, 3, "layer2.1"
    alpha = eps / steps
    ours = A.ILA(net, eps, None, steps)(x0, y)
    xb, m = x0.clone(), torch.zeros_like(x0)
    for _ in range(steps):                     # baseline MI-FGSM
        m = mi(ce_grad(net, xb, y), m, 1.0)
        xb = project(xb + alpha * m.sign(), x0, eps)
    store, h = tapped(net, layer)
    with torch.no_grad():
        net(x0)
        f0 = store["f"].clone()
        net(xb)
        d = store["f"].clone() - f0
    x = x0.clone()
    for _ in range(steps):
        xl = x.detach().requires_grad_(True)
        net(xl)
        loss = ((store["f"] - f0) * d).flatten(1).sum(1) / d.flatten(1).pow(2).sum(1)
        g = torch.autograd.grad(loss.sum(), xl)[0]
        x = project(x + alpha * g.sign(), x0, eps)
    h.remove()
    torch.testing.assert_close(ours, x, **TOL)


@pytest.mark.parametrize("kind", ["fia", "naa"])
def test_fia_and_naa_equal_reference_on_resnet18(kind):
    net = resnet18()
    x0, y = images(2, size=32)
    eps, steps, N, layer = 16 / 255, 3, 4, "layer2"
    alpha = eps / steps
    store, h = tapped(net, layer)
    if kind == "fia":
        u = draws(x0, (N, 3, 32, 32), stream(0, 0, SLOT_SETUP))
        path = [x0 * (u[:, k] >= 0.1).float() for k in range(N)]
    else:
        xi = draws(x0, (N, 3, 32, 32), stream(0, 0, SLOT_SETUP), "normal")
        path = [(x0 + 0.1 * xi[:, k]) * (1 - k / N) for k in range(N)]
    w = 0
    for p in path:
        logits = net(p.detach().requires_grad_(True))
        s = logits if kind == "fia" else logits.softmax(1)
        w = w + torch.autograd.grad(s.gather(1, y[:, None]).sum(), store["f"])[0]
    w = w / w.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    with torch.no_grad():
        net(torch.zeros_like(x0))
        base = store["f"].clone() if kind == "naa" else 0.0
    x, m = x0.clone(), torch.zeros_like(x0)
    for _ in range(steps):
        xl = x.detach().requires_grad_(True)
        net(xl)
        loss = -((store["f"] - base) * w).flatten(1).sum(1)
        m = mi(torch.autograd.grad(loss.sum(), xl)[0], m, 1.0)
        x = project(x + alpha * m.sign(), x0, eps)
    h.remove()
    cls = A.FIA if kind == "fia" else A.NAA
    ours = cls(net, eps, None, steps, layer=layer, N=N)(x0, y)
    torch.testing.assert_close(ours, x, **TOL)


# ---------------------------------------------------------------------------------------- SVRE
def test_svre_equals_reference():
    nets = [small_cnn(0), small_cnn(1), small_cnn(2)]
    x0, y = images()
    eps, steps, M, mu = 16 / 255, 3, 4, 1.0
    alpha = eps / steps
    ours = A.SVRE(nets, eps, None, steps, inner_steps=M)(x0, y)

    def ens(z):
        return torch.stack([n(z) for n in nets]).mean(0)

    x, G = x0.clone(), torch.zeros_like(x0)
    for t in range(steps):
        g_ens = ce_grad(ens, x, y)
        pick = (draws(x0, (M,), stream(0, t, SLOT_INNER)).double() * len(nets)).floor().long()
        xt, Gt = x.clone(), torch.zeros_like(x0)
        for m in range(M):
            per_model_inner = torch.stack([ce_grad(n, xt, y) for n in nets])       # [K, n, ...]
            per_model_outer = torch.stack([ce_grad(n, x, y) for n in nets])
            rows = torch.arange(x0.shape[0])
            g = per_model_inner[pick[:, m], rows] - (per_model_outer[pick[:, m], rows] - g_ens)
            Gt = mi(g, Gt, mu)
            xt = project(xt + alpha * Gt.sign(), x0, eps)
        G = mi(Gt, G, mu)
        x = project(x + alpha * G.sign(), x0, eps)
    torch.testing.assert_close(ours, x, **TOL)


def linbp_last_block_reference_grad(net, x, y, lam=1.0):
    """LinBP from torchvision ResNet-18's last block (layer4.1): manual linear backward there."""
    b = net.layer4[1]

    def prefix(z):
        z = net.maxpool(net.relu(net.bn1(net.conv1(z))))
        return net.layer4[0](net.layer3(net.layer2(net.layer1(z))))

    xl = x.detach().requires_grad_(True)
    z = prefix(xl)
    zd = z.detach().requires_grad_(True)
    pre = zd + b.bn2(b.conv2(F.relu(b.bn1(b.conv1(zd)))))
    loss = F.cross_entropy(net.fc(torch.flatten(net.avgpool(F.relu(pre)), 1)), y, reduction="sum")
    (g_pre,) = torch.autograd.grad(loss, pre)
    zt = z.detach().requires_grad_(True)
    (g_true,) = torch.autograd.grad(b.bn2(b.conv2(F.relu(b.bn1(b.conv1(zt))))), zt, g_pre)
    zl = z.detach().requires_grad_(True)
    (g_lin,) = torch.autograd.grad(b.bn2(b.conv2(b.bn1(b.conv1(zl)))), zl, g_pre)
    scale = lam * g_true.flatten(1).norm(dim=1) / g_lin.flatten(1).norm(dim=1)
    return torch.autograd.grad(z, xl, g_pre + scale.view(-1, 1, 1, 1) * g_lin)[0]


def test_linbp_on_torchvision_resnet18_equals_manual_linear_backward():
    net = resnet18()
    x0, y = images(2, size=32)
    eps, steps = 16 / 255, 2
    ours = A.LinBP(net, eps, None, steps, layer="layer4.1")(x0, y)
    x = x0.clone()
    for t in range(steps):
        u = draws(x0, (3, 32, 32), stream(0, t, SLOT_NOISE))
        g = linbp_last_block_reference_grad(net, x + (2 * u - 1) * eps, y)
        x = project(x + eps / steps * g.sign(), x0, eps)
    torch.testing.assert_close(ours, x, **TOL)


def test_sgm_and_linbp_find_timm_resnet_blocks_and_restore_them():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    net = timm.create_model("resnet18", pretrained=False, num_classes=10).eval()
    with torch.no_grad():                # timm zero-initialises each block's last BN: give the branches weight
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
    assert len(A.modifiers.residual_blocks(net)) == 8
    x0, y = images(2, size=32)
    plain = A.MIFGSM(net, 16 / 255, None, 2)(x0, y)
    for atk in (A.SGM(net, 16 / 255, None, 2), A.LinBP(net, 16 / 255, None, 2, ta_mi=True)):
        out = atk(x0, y)
        assert float((out - x0).abs().max()) <= 16 / 255 + 1e-6
        assert not torch.equal(out, plain)                    # the backward really changed
        assert not any("forward" in vars(m) for m in net.modules())
    torch.testing.assert_close(A.MIFGSM(net, 16 / 255, None, 2)(x0, y), plain)
