"""CycleGAN training step for bench_torch.py: the same networks as
include/genai/models/gan/cyclegan.hpp (junyanz/pytorch-CycleGAN-and-pix2pix networks.py:
ResnetGenerator with reflection padding and instance norm, PatchGAN NLayerDiscriminator)
and one optimize_parameters iteration (G step with LSGAN + cycle (lambda 10) + identity
(0.5) losses, D_A and D_B steps on the current fakes; Adam 2e-4, betas (0.5, 0.999)).

  train_step/cyclegan   the Fashion-MNIST default: 1 x 28 x 28, ngf = ndf = 16, 4 residual
                        blocks, 2-layer PatchGAN, batch 1 per domain (the paper's batch size)

Registered by bench_torch.py (register(bench)); names match genai_bench's.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def _norm(c):
    return nn.InstanceNorm2d(c, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), _norm(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), _norm(dim))

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, ngf, n_blocks, n_downsampling=2):
        super().__init__()
        m = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7), _norm(ngf), nn.ReLU(True)]
        for i in range(n_downsampling):
            c = ngf * 2 ** i
            m += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), _norm(2 * c), nn.ReLU(True)]
        c = ngf * 2 ** n_downsampling
        m += [ResnetBlock(c) for _ in range(n_blocks)]
        for i in range(n_downsampling):
            c = ngf * 2 ** (n_downsampling - i)
            m += [nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1), _norm(c // 2), nn.ReLU(True)]
        m += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*m)

    def forward(self, x):
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    def __init__(self, input_nc, ndf, n_layers):
        super().__init__()
        seq = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1), _norm(ndf * mult), nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2 ** n_layers, 8)
        seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1), _norm(ndf * mult), nn.LeakyReLU(0.2, True)]
        seq += [nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
        self.model = nn.Sequential(*seq)

    def forward(self, x):
        return self.model(x)


def make_step(nc=1, size=28, ngf=16, ndf=16, n_blocks=4, n_layers=2, batch=1):
    G_A, G_B = ResnetGenerator(nc, nc, ngf, n_blocks), ResnetGenerator(nc, nc, ngf, n_blocks)
    D_A, D_B = NLayerDiscriminator(nc, ndf, n_layers), NLayerDiscriminator(nc, ndf, n_layers)
    opt_G = torch.optim.Adam(list(G_A.parameters()) + list(G_B.parameters()), lr=2e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(list(D_A.parameters()) + list(D_B.parameters()), lr=2e-4, betas=(0.5, 0.999))
    real_A = torch.rand(batch, nc, size, size) * 2 - 1
    real_B = torch.rand(batch, nc, size, size) * 2 - 1

    def gan(pred, real):
        return F.mse_loss(pred, torch.full_like(pred, 1.0 if real else 0.0))

    def step():
        for d in (D_A, D_B):
            d.requires_grad_(False)
        opt_G.zero_grad()
        fake_B = G_A(real_A)
        rec_A = G_B(fake_B)
        fake_A = G_B(real_B)
        rec_B = G_A(fake_A)
        loss_G = (F.l1_loss(G_A(real_B), real_B) * 5 + F.l1_loss(G_B(real_A), real_A) * 5
                  + gan(D_A(fake_B), True) + gan(D_B(fake_A), True)
                  + F.l1_loss(rec_A, real_A) * 10 + F.l1_loss(rec_B, real_B) * 10)
        loss_G.backward()
        opt_G.step()
        for d in (D_A, D_B):
            d.requires_grad_(True)
        opt_D.zero_grad()
        lDA = 0.5 * (gan(D_A(real_B), True) + gan(D_A(fake_B.detach()), False))
        lDA.backward()
        lDB = 0.5 * (gan(D_B(real_A), True) + gan(D_B(fake_A.detach()), False))
        lDB.backward()
        opt_D.step()
        return loss_G
    return step


def register(bench):
    bench("train_step/cyclegan")(lambda: make_step())


if __name__ == "__main__":  # quick timing of other configurations: python3 bench_cyclegan.py
    import sys
    import time
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    for kw in (dict(), dict(batch=4), dict(ngf=32, ndf=32, n_blocks=6)):
        s = make_step(**kw)
        s(); s()
        t = time.perf_counter(); n = 0
        while time.perf_counter() - t < 3:
            s(); n += 1
        print(kw, "%.1f ms" % ((time.perf_counter() - t) / n * 1e3))
