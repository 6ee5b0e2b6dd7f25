"""StyleGAN2 benchmark for bench_torch.py (imported by it; register(bench) adds the benchmarks).

  train_step/stylegan     one iteration of genai's models::stylegan_train_step in PyTorch, as
                          benchmarks/bench_train_stylegan.cpp: the default 32x32 configuration
                          (z = w = 128, 8 mapping layers with lr multiplier 0.01, channels 64, 64,
                          32, 16 at 4, 8, 16, 32, 1 channel, minibatch-stddev group 4), batch 32:
                          G step (non-saturating loss, style mixing 0.9, fresh noise inputs, D
                          frozen), D step on detached fakes and reals; Adam(0.0025, (0, 0.99))
  train_step/stylegan_r1  the same on a lazy-R1 iteration (gamma 0.01 x interval 16): the D step
                          also differentiates the reals' input gradient (double backward)

The networks are tests/fixtures/make_stylegan_fixtures.py's (stylegan2-ada-pytorch's layout with
genai's bilinear / average-pool resampling), with fresh noise per call. The official code's
activation-scaling form of the modulated convolution (fused_modconv=False, what it trains with)
is used here, as in genai.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

SQRT2 = math.sqrt(2.0)


def modulated_conv2d(x, weight, styles, noise=None, padding=0, demodulate=True):
    """stylegan2-ada-pytorch's modulated_conv2d with fused_modconv=False (up = down = 1)."""
    N = x.shape[0]
    x = x * styles.reshape(N, -1, 1, 1)
    x = F.conv2d(x, weight, padding=padding)
    if demodulate:
        w = weight.unsqueeze(0) * styles.reshape(N, 1, -1, 1, 1)
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
        x = x * dcoefs.reshape(N, -1, 1, 1)
    if noise is not None:
        x = x + noise
    return x


def bias_act(x, b, lrelu, gain=1.0):
    if b is not None:
        x = x + b.reshape([1, -1] + [1] * (x.ndim - 2))
    if lrelu:
        x = F.leaky_relu(x, 0.2) * SQRT2
    return x * gain if gain != 1.0 else x


class FullyConnectedLayer(nn.Module):
    def __init__(self, i, o, lrelu=False, lr_multiplier=1.0, bias_init=0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(o, i) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([o], float(bias_init)))
        self.lrelu, self.wg, self.bg = lrelu, lr_multiplier / math.sqrt(i), lr_multiplier

    def forward(self, x):
        x = F.linear(x, self.weight * self.wg, self.bias * self.bg)
        return F.leaky_relu(x, 0.2) * SQRT2 if self.lrelu else x


class Conv2dLayer(nn.Module):
    def __init__(self, i, o, k, lrelu, down=False, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(o, i, k, k))
        self.bias = nn.Parameter(torch.zeros(o)) if bias else None
        self.k, self.lrelu, self.down, self.wg = k, lrelu, down, 1 / math.sqrt(i * k * k)

    def forward(self, x, gain=1.0):
        if self.down:
            x = F.avg_pool2d(x, 2)
        x = F.conv2d(x, self.weight * self.wg, padding=self.k // 2)
        return bias_act(x, self.bias, self.lrelu, gain)


class SynthesisLayer(nn.Module):
    def __init__(self, i, o, w_dim, res, up):
        super().__init__()
        self.affine = FullyConnectedLayer(w_dim, i, bias_init=1)
        self.weight = nn.Parameter(torch.randn(o, i, 3, 3))
        self.register_buffer("noise_const", torch.randn(res, res))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(o))
        self.up = up

    def forward(self, x, w):
        styles = self.affine(w)
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], dtype=x.dtype) * self.noise_strength
        x = modulated_conv2d(x, self.weight, styles, noise, padding=1, demodulate=True)
        return bias_act(x, self.bias, True)


class ToRGBLayer(nn.Module):
    def __init__(self, i, o, w_dim):
        super().__init__()
        self.affine = FullyConnectedLayer(w_dim, i, bias_init=1)
        self.weight = nn.Parameter(torch.randn(o, i, 1, 1))
        self.bias = nn.Parameter(torch.zeros(o))
        self.wg = 1 / math.sqrt(i)

    def forward(self, x, w):
        styles = self.affine(w) * self.wg
        x = modulated_conv2d(x, self.weight, styles, None, padding=0, demodulate=False)
        return bias_act(x, self.bias, False)


class SynthesisBlock(nn.Module):
    def __init__(self, i, o, w_dim, res, img_channels):
        super().__init__()
        self.i, self.res = i, res
        if i == 0:
            self.const = nn.Parameter(torch.randn(o, res, res))
        else:
            self.conv0 = SynthesisLayer(i, o, w_dim, res, True)
        self.conv1 = SynthesisLayer(o, o, w_dim, res, False)
        self.torgb = ToRGBLayer(o, img_channels, w_dim)
        self.num_conv = 1 if i == 0 else 2

    def forward(self, x, img, ws):
        w_iter = iter(ws.unbind(dim=1))
        if self.i == 0:
            x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
        else:
            x = self.conv0(x, next(w_iter))
        x = self.conv1(x, next(w_iter))
        if img is not None:
            img = F.interpolate(img, scale_factor=2, mode="bilinear", align_corners=False)
        y = self.torgb(x, next(w_iter))
        return x, (img + y if img is not None else y)


def channels(res, base, cmax):
    return max(1, min(base // res, cmax))


class SynthesisNetwork(nn.Module):
    def __init__(self, w_dim, resolution, img_channels, base, cmax):
        super().__init__()
        self.resolutions = [2 ** i for i in range(2, int(math.log2(resolution)) + 1)]
        self.num_ws = 0
        for res in self.resolutions:
            i = 0 if res == 4 else channels(res // 2, base, cmax)
            b = SynthesisBlock(i, channels(res, base, cmax), w_dim, res, img_channels)
            setattr(self, f"b{res}", b)
            self.num_ws += b.num_conv
        self.num_ws += 1

    def forward(self, ws):
        x = img = None
        w_idx = 0
        for res in self.resolutions:
            b = getattr(self, f"b{res}")
            x, img = b(x, img, ws.narrow(1, w_idx, b.num_conv + 1))
            w_idx += b.num_conv
        return img


class MappingNetwork(nn.Module):
    def __init__(self, z_dim, w_dim, num_ws, num_layers, lr_mult, beta=0.995):
        super().__init__()
        self.num_layers, self.num_ws, self.beta = num_layers, num_ws, beta
        for i in range(num_layers):
            setattr(self, f"fc{i}", FullyConnectedLayer(z_dim if i == 0 else w_dim, w_dim, True, lr_mult))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z, psi=1.0, cutoff=None, update=False):
        x = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if update and self.training:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.beta))
        x = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if psi != 1:
            cutoff = self.num_ws if cutoff is None else cutoff
            x = x.clone()
            x[:, :cutoff] = self.w_avg.lerp(x[:, :cutoff], psi)
        return x


class Generator(nn.Module):
    def __init__(self, z_dim, w_dim, map_layers, resolution, img_channels, base, cmax, lr_mult=0.01):
        super().__init__()
        self.synthesis = SynthesisNetwork(w_dim, resolution, img_channels, base, cmax)
        self.mapping = MappingNetwork(z_dim, w_dim, self.synthesis.num_ws, map_layers, lr_mult)

    def forward(self, z, psi=1.0, cutoff=None):
        return self.synthesis(self.mapping(z, psi, cutoff))


def minibatch_stddev(x, group_size, F_=1):
    N, C, H, W = x.shape
    G = min(group_size, N)
    c = C // F_
    y = x.reshape(G, -1, F_, c, H, W)
    y = y - y.mean(dim=0)
    y = y.square().mean(dim=0)
    y = (y + 1e-8).sqrt()
    y = y.mean(dim=[2, 3, 4])
    y = y.reshape(-1, F_, 1, 1)
    y = y.repeat(G, 1, H, W)
    return torch.cat([x, y], dim=1)


class DiscriminatorBlock(nn.Module):
    def __init__(self, i, tmp, o, img_channels):
        super().__init__()
        self.first = i == 0
        if self.first:
            self.fromrgb = Conv2dLayer(img_channels, tmp, 1, True)
        self.conv0 = Conv2dLayer(tmp, tmp, 3, True)
        self.conv1 = Conv2dLayer(tmp, o, 3, True, down=True)
        self.skip = Conv2dLayer(tmp, o, 1, False, down=True, bias=False)

    def forward(self, x):
        if self.first:
            x = self.fromrgb(x)
        y = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv0(x)
        x = self.conv1(x, gain=math.sqrt(0.5))
        return y + x


class DiscriminatorEpilogue(nn.Module):
    def __init__(self, i, group, nch):
        super().__init__()
        self.group, self.nch = group, nch
        self.conv = Conv2dLayer(i + nch, i, 3, True)
        self.fc = FullyConnectedLayer(i * 16, i, True)
        self.out = FullyConnectedLayer(i, 1)

    def forward(self, x):
        x = self.conv(minibatch_stddev(x, self.group, self.nch))
        x = self.fc(x.flatten(1))
        return self.out(x).reshape(-1)


class Discriminator(nn.Module):
    def __init__(self, resolution, img_channels, base, cmax, group):
        super().__init__()
        self.resolutions = []
        res = resolution
        while res > 4:
            i = 0 if res == resolution else channels(res, base, cmax)
            setattr(self, f"b{res}", DiscriminatorBlock(i, channels(res, base, cmax), channels(res // 2, base, cmax),
                                                        img_channels))
            self.resolutions.append(res)
            res //= 2
        self.b4 = DiscriminatorEpilogue(channels(4, base, cmax), group, 1)

    def forward(self, img):
        x = img
        for res in self.resolutions:
            x = getattr(self, f"b{res}")(x)
        return self.b4(x)




def _r1(D, real):
    x = real.detach().requires_grad_(True)
    logits = D(x)
    g, = torch.autograd.grad(outputs=[logits.sum()], inputs=[x], create_graph=True)
    return g.square().sum(dim=[1, 2, 3]), logits


def _mapping_mixed(G, z, z2, prob=0.9):
    ws = G.mapping(z, update=True)
    cutoff = int(torch.randint(1, ws.shape[1], ()))
    if float(torch.rand(())) < prob:
        ws2 = G.mapping(z2)
        ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
    return ws


def _setup(r1):
    torch.manual_seed(0)
    G = Generator(128, 128, 8, 32, 1, 512, 64).float()
    D = Discriminator(32, 1, 512, 64, 4).float()
    optG = torch.optim.Adam(G.parameters(), lr=0.0025, betas=(0, 0.99), eps=1e-8)
    optD = torch.optim.Adam(D.parameters(), lr=0.0025, betas=(0, 0.99), eps=1e-8)
    B = 32
    real = torch.rand(B, 1, 32, 32) * 2 - 1
    gamma, interval = 0.01, 16

    def step():
        optG.zero_grad()
        for p in D.parameters():
            p.requires_grad_(False)
        img = G.synthesis(_mapping_mixed(G, torch.randn(B, 128), torch.randn(B, 128)))
        F.softplus(-D(img)).mean().backward()
        for p in D.parameters():
            p.requires_grad_(True)
        optG.step()
        optD.zero_grad()
        with torch.no_grad():
            fake = G.synthesis(_mapping_mixed(G, torch.randn(B, 128), torch.randn(B, 128)))
        fl = D(fake)
        if r1:
            pen, rl = _r1(D, real)
        else:
            rl = D(real)
        loss = F.softplus(fl).mean() + F.softplus(-rl).mean()
        if r1:
            loss = loss + pen.mean() * (gamma / 2 * interval)
        loss.backward()
        optD.step()
    return step


def register(bench):
    bench("train_step/stylegan")(lambda: _setup(False))
    bench("train_step/stylegan_r1")(lambda: _setup(True))
