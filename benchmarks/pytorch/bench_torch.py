#!/usr/bin/env python3
"""The same kernels and reference models as genai_bench, timed in PyTorch (CPU, eager).

Run with Debian's python3-torch (1.13). Prints one JSON object per benchmark
({"name", "threads", "ms", "min_ms", "cpu_ms"}: median and minimum wall
milliseconds per iteration, median process CPU milliseconds per iteration) so that
compare.py can put genai and PyTorch side by side. Names match genai_bench's
(`kernel/...`, `train_step/...`). The configurations are those of
../shared/REFERENCE_MODELS.md (copied into docs/benchmarks.md).

  bench_torch.py --threads 2 [--filter REGEX] [--min-time 1.0]

PyTorch is given its best settings: the thread count asked for (intra-op),
one inter-op thread, and no autograd where the benchmark does not need it.
"""
import argparse
import json
import math
import re
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

BENCHES = []


def bench(name):
    def deco(fn):
        BENCHES.append((name, fn))
        return fn
    return deco


def timeit(fn, min_time):
    """Median wall ms per call, plus the minimum and the median process CPU ms (all threads)."""
    fn()  # warm up (allocator, lazy init)
    fn()
    times, cpu = [], []
    start = time.perf_counter()
    while True:
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        if time.perf_counter() - start >= min_time and len(times) >= 5:
            break
    return statistics.median(times) * 1e3, min(times) * 1e3, statistics.median(cpu) * 1e3


# ---- kernels ----------------------------------------------------------------------

for n in (128, 256, 512, 1024, 2048):
    def make(n):
        def setup():
            a, b = torch.randn(n, n), torch.randn(n, n)
            return lambda: torch.mm(a, b)
        return setup
    bench(f"kernel/sgemm/{n}")(make(n))
    def make_tn(n):
        def setup():
            a, b = torch.randn(n, n), torch.randn(n, n)
            return lambda: torch.mm(a.t(), b)
        return setup
    bench(f"kernel/sgemm_tn/{n}")(make_tn(n))
    def make_nt(n):
        def setup():
            a, b = torch.randn(n, n), torch.randn(n, n)
            return lambda: torch.mm(a, b.t())
        return setup
    bench(f"kernel/sgemm_nt/{n}")(make_nt(n))


@bench("kernel/conv2d_3x3/forward")
def _():
    x, w = torch.randn(8, 64, 56, 56), torch.randn(64, 64, 3, 3)
    return lambda: F.conv2d(x, w, padding=1)


@bench("kernel/conv2d_3x3/backward")
def _():
    x = torch.randn(8, 64, 56, 56, requires_grad=True)
    w = torch.randn(64, 64, 3, 3, requires_grad=True)
    y = F.conv2d(x, w, padding=1)
    g = torch.randn_like(y)
    return lambda: torch.autograd.grad(y, (x, w), g, retain_graph=True)


def attention(q, k, v):
    # torch 1.13 has no F.scaled_dot_product_attention: the composite form
    t = q.shape[-2]
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    mask = torch.ones(t, t, dtype=torch.bool).triu(1)
    return torch.softmax(s.masked_fill(mask, float("-inf")), -1) @ v


@bench("kernel/attention/forward")
def _():
    q, k, v = (torch.randn(8, 8, 256, 64) for _ in range(3))
    return lambda: attention(q, k, v)


@bench("kernel/attention/forward_backward")
def _():
    q, k, v = (torch.randn(8, 8, 256, 64, requires_grad=True) for _ in range(3))
    def step():
        o = attention(q, k, v)
        o.backward(torch.ones_like(o))
    return step


@bench("kernel/lstm/forward")
def _():
    lstm = nn.LSTM(256, 256, batch_first=True)
    x = torch.randn(32, 64, 256)
    def step():
        with torch.no_grad():
            lstm(x)
    return step


@bench("kernel/lstm/forward_backward")
def _():
    lstm = nn.LSTM(256, 256, batch_first=True)
    x = torch.randn(32, 64, 256, requires_grad=True)
    def step():
        out, _ = lstm(x)
        out.sum().backward()
    return step


@bench("kernel/layernorm")
def _():
    x = torch.randn(4096, 1024)
    ln = nn.LayerNorm(1024)
    def step():
        with torch.no_grad():
            ln(x)
    return step


@bench("kernel/softmax")
def _():
    x = torch.randn(4096, 1024)
    return lambda: torch.softmax(x, -1)


@bench("kernel/add")
def _():
    a, b = torch.randn(16 << 20), torch.randn(16 << 20)
    return lambda: a + b


@bench("kernel/gelu")
def _():
    x = torch.randn(16 << 20)
    return lambda: F.gelu(x)


@bench("kernel/op_overhead")
def _():
    # 1000 adds on 16-element tensors with autograd, forward + backward (per-op time = ms)
    x = torch.randn(16, requires_grad=True)
    c = torch.randn(16)
    def step():
        y = x
        for _ in range(1000):
            y = y + c
        y.sum().backward()
    return step


@bench("train_step/char_lstm")
def _():
    # Embedding(65 -> 64), 2-layer LSTM hidden 256, Linear(256 -> 65); 32 x 64 random ids,
    # state carried (detached) between steps; cross-entropy, clip_grad_norm_(1.0), Adam 2e-3
    class CharLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(65, 64)
            self.lstm = nn.LSTM(64, 256, 2, batch_first=True)
            self.head = nn.Linear(256, 65)

        def forward(self, idx, state):
            o, state = self.lstm(self.embedding(idx), state)
            return self.head(o), state

    model = CharLSTM()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    x, y = torch.randint(0, 65, (32, 64)), torch.randint(0, 65, (32, 64))
    st = [None]

    def step():
        logits, state = model(x, st[0])
        loss = F.cross_entropy(logits.reshape(-1, 65), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        st[0] = tuple(s.detach() for s in state)
    return step


@bench("train_step/vae")
def _():
    # MLP VAE 784 -> 400 -> (mu, logvar) 20 -> 400 -> 784 logits; 128 x 784 in [0, 1];
    # BCE-with-logits (sum) + KL, Adam 1e-3 (benchmarks/bench_train_vae_dcgan.cpp)
    class VAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
            self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

        def forward(self, x):
            h = F.relu(self.fc1(x))
            mu, logvar = self.fc21(h), self.fc22(h)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            return self.fc4(F.relu(self.fc3(z))), mu, logvar

    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(128, 784)

    def step():
        logits, mu, logvar = model(x)
        loss = (F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
                - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


@bench("train_step/dcgan")
def _():
    # 28x28 DCGAN, nz 100, ngf = ndf = 64, no conv bias; 64 x 1 x 28 x 28 in [-1, 1]; one D step
    # (real + detached fake) then one G step, BCE-with-logits, Adam 2e-4 betas (0.5, 0.999)
    netG = nn.Sequential(
        nn.ConvTranspose2d(100, 256, 7, 1, 0, bias=False), nn.BatchNorm2d(256), nn.ReLU(True),
        nn.ConvTranspose2d(256, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(True),
        nn.ConvTranspose2d(128, 1, 4, 2, 1, bias=False), nn.Tanh())
    netD = nn.Sequential(
        nn.Conv2d(1, 64, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),
        nn.Conv2d(64, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), nn.LeakyReLU(0.2, True),
        nn.Conv2d(128, 1, 7, 1, 0, bias=False), nn.Flatten(0))
    optG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = torch.rand(64, 1, 28, 28) * 2 - 1
    ones, zeros = torch.ones(64), torch.zeros(64)
    bce = F.binary_cross_entropy_with_logits

    def step():
        optD.zero_grad()
        fake = netG(torch.randn(64, 100, 1, 1))
        errD = bce(netD(real), ones) + bce(netD(fake.detach()), zeros)
        errD.backward()
        optD.step()
        optG.zero_grad()
        errG = bce(netD(fake), ones)
        errG.backward()
        optG.step()
    return step


class TorchGPT(nn.Module):
    """nanoGPT's model (pre-LN blocks, fused qkv, tied head), with an optional KV cache for
    decoding (Hugging Face's past_key_values scheme: keys/values concatenated per step).
    Used by train_step/char_gpt and train_step/gpt2_decode_token (benchmarks/bench_train_gpt.cpp)."""

    def __init__(self, vocab, block, n_layer, n_head, n_embd, gelu="none"):
        super().__init__()
        self.n_head, self.gelu = n_head, gelu
        self.wte, self.wpe = nn.Embedding(vocab, n_embd), nn.Embedding(block, n_embd)
        self.h = nn.ModuleList()
        for _ in range(n_layer):
            b = nn.Module()
            b.ln_1, b.ln_2 = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)
            b.c_attn, b.c_proj = nn.Linear(n_embd, 3 * n_embd), nn.Linear(n_embd, n_embd)
            b.c_fc, b.mlp_proj = nn.Linear(n_embd, 4 * n_embd), nn.Linear(4 * n_embd, n_embd)
            self.h.append(b)
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab, bias=False)
        self.lm_head.weight = self.wte.weight
        for n, p in self.named_parameters():
            if p.dim() >= 2:
                nn.init.normal_(p, 0.0, 0.02)

    def forward(self, idx, past=None):
        B, T = idx.shape
        t0 = 0 if past is None else past[0][0].shape[2]
        x = self.wte(idx) + self.wpe(torch.arange(t0, t0 + T))
        new_past = []
        for i, b in enumerate(self.h):
            q, k, v = b.c_attn(b.ln_1(x)).split(x.shape[-1], 2)
            H, C = self.n_head, x.shape[-1]
            q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))
            if past is not None:
                k, v = torch.cat([past[i][0], k], 2), torch.cat([past[i][1], v], 2)
            new_past.append((k, v))
            att = q @ k.transpose(-1, -2) / math.sqrt(C // H)
            if T > 1:  # causal (torch 1.13 has no scaled_dot_product_attention)
                S = k.shape[2]
                mask = torch.ones(T, S, dtype=torch.bool).triu(S - T + 1)
                att = att.masked_fill(mask, float("-inf"))
            y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, C)
            x = x + b.c_proj(y)
            x = x + b.mlp_proj(F.gelu(b.c_fc(b.ln_2(x)), approximate=self.gelu))
        return self.lm_head(self.ln_f(x)), new_past


@bench("train_step/char_gpt")
def _():
    # token emb 65 x 128 + pos 64 x 128, 4 pre-LN blocks (4 heads, fused qkv, MLP 512 GELU), final LN,
    # tied head; 12 x 64 random ids; cross-entropy; AdamW 1e-3
    model = TorchGPT(65, 64, 4, 4, 128)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = torch.randint(0, 65, (12, 64)), torch.randint(0, 65, (12, 64))

    def step():
        logits, _ = model(x)
        loss = F.cross_entropy(logits.view(-1, 65), y.view(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


@bench("train_step/gpt2_decode_token")
def _():
    # GPT-2 small shape (124M, random weights, float32, tied head), no grad: a 16-token prompt,
    # then greedy decoding with the KV cache; one call = one generated token (every 33rd call
    # re-prefills after 32 tokens, an outlier the median ignores)
    model = TorchGPT(50257, 1024, 12, 12, 768, gelu="tanh").eval()
    prompt = torch.randint(0, 50257, (1, 16))
    st = {}

    @torch.no_grad()
    def step():
        if st.get("n", 32) == 32:
            logits, st["past"] = model(prompt)
            st["n"] = 0
        else:
            logits, st["past"] = model(st["tok"], st["past"])
            st["n"] += 1
        st["tok"] = logits[:, -1, :].argmax(-1, keepdim=True)
    return step


class TorchDDPMUNet(nn.Module):
    """The ddpm_unet reference U-Net (include/genai/models/diffusion/unet.hpp defaults; the same
    module as tests/fixtures/make_diffusion_fixtures.py's UNet with its defaults, flattened)."""

    class Res(nn.Module):
        def __init__(self, ci, co, td=128, g=8):
            super().__init__()
            self.norm1, self.conv1 = nn.GroupNorm(g, ci), nn.Conv2d(ci, co, 3, padding=1)
            self.time_proj = nn.Linear(td, co)
            self.norm2, self.conv2 = nn.GroupNorm(g, co), nn.Conv2d(co, co, 3, padding=1)
            self.skip = nn.Conv2d(ci, co, 1) if ci != co else nn.Identity()

        def forward(self, x, emb):
            h = self.conv1(F.silu(self.norm1(x))) + self.time_proj(emb)[:, :, None, None]
            return self.skip(x) + self.conv2(F.silu(self.norm2(h)))

    class Attn(nn.Module):
        def __init__(self, c, g=8):
            super().__init__()
            self.norm, self.qkv, self.proj = nn.GroupNorm(g, c), nn.Conv2d(c, 3 * c, 1), nn.Conv2d(c, c, 1)

        def forward(self, x):
            n, c, h, w = x.shape
            q, k, v = self.qkv(self.norm(x)).reshape(n, 3, c, h * w).unbind(1)  # 1 head: (N, C, HW)
            a = torch.softmax(q.transpose(1, 2) @ k / math.sqrt(c), dim=-1)  # (N, HW, HW)
            return x + self.proj((v @ a.transpose(1, 2)).reshape(n, c, h, w))

    def __init__(self, c=32):
        super().__init__()
        self.time_mlp = nn.Sequential(nn.Linear(32, 128), nn.SiLU(), nn.Linear(128, 128))
        self.conv_in = nn.Conv2d(1, c, 3, padding=1)
        self.res0, self.down0 = self.Res(c, c), nn.Conv2d(c, c, 3, 2, 1)
        self.res1, self.down1 = self.Res(c, 2 * c), nn.Conv2d(2 * c, 2 * c, 3, 2, 1)
        self.mid_res1, self.mid_attn, self.mid_res2 = self.Res(2 * c, 2 * c), self.Attn(2 * c), self.Res(2 * c, 2 * c)
        self.up1, self.ures1 = nn.ConvTranspose2d(2 * c, 2 * c, 4, 2, 1), self.Res(4 * c, 2 * c)
        self.up0, self.ures0 = nn.ConvTranspose2d(2 * c, c, 4, 2, 1), self.Res(2 * c, c)
        self.norm_out, self.conv_out = nn.GroupNorm(8, c), nn.Conv2d(c, 1, 3, padding=1)

    def forward(self, x, t):
        freqs = torch.exp(-math.log(10000.0) * torch.arange(16) / 15)
        a = t.float()[:, None] * freqs[None]
        emb = F.silu(self.time_mlp(torch.cat([a.sin(), a.cos()], 1)))
        s0 = self.res0(self.conv_in(x), emb)
        s1 = self.res1(self.down0(s0), emb)
        h = self.mid_res2(self.mid_attn(self.mid_res1(self.down1(s1), emb)), emb)
        h = self.ures1(torch.cat([self.up1(h), s1], 1), emb)
        h = self.ures0(torch.cat([self.up0(h), s0], 1), emb)
        return self.conv_out(F.silu(self.norm_out(h)))


@bench("train_step/ddpm_unet")
def _():
    # the ddpm_unet reference U-Net on 64 x 1x28x28, t ~ U{0..999}, linear betas 1e-4..0.02,
    # x_t = sqrt(abar) x0 + sqrt(1 - abar) eps, MSE on eps, Adam 2e-4
    model = TorchDDPMUNet()
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    abar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0).float()
    x0 = torch.rand(64, 1, 28, 28) * 2 - 1

    def step():
        t = torch.randint(0, 1000, (64,))
        eps = torch.randn_like(x0)
        a = abar[t][:, None, None, None]
        loss = F.mse_loss(model(a.sqrt() * x0 + (1 - a).sqrt() * eps, t), eps)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


@bench("train_step/realnvp")
def _():
    # the realnvp reference: 8 affine couplings on 784-d with alternating even/odd masks, each
    # s,t net Linear(784, 512) ReLU Linear(512, 512) ReLU Linear(512, 1568) split into s (tanh,
    # masked) and t (masked); 128 x 784 in [0, 1); NLL under N(0, I) with log-det; Adam 1e-3
    # (benchmarks/bench_train_realnvp.cpp; the same model as tests/fixtures/make_flow_fixtures.py)
    d = 784
    masks = [torch.tensor([1.0 if (j + i) % 2 == 0 else 0.0 for j in range(d)]) for i in range(2)]
    nets = nn.ModuleList([nn.Sequential(nn.Linear(d, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                                        nn.Linear(512, 2 * d)) for _ in range(8)])
    opt = torch.optim.Adam(nets.parameters(), lr=1e-3)
    x = torch.rand(128, d)

    def step():
        z, ld = x, 0
        for i, net in enumerate(nets):
            b = masks[i % 2]
            s, t = net(z * b).chunk(2, 1)
            s, t = torch.tanh(s) * (1 - b), t * (1 - b)
            z = z * torch.exp(s) + t
            ld = ld + s.sum(1)
        loss = -(-0.5 * (z ** 2).sum(1) - 0.5 * d * math.log(2 * math.pi) + ld).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


@bench("sample/ddpm_unet_denoise")
def _():
    # one sampler step on 64 images: the reference U-Net's forward (no grad) + the DDIM update
    model = TorchDDPMUNet().eval()
    abar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)
    a_t, a_prev = abar[500].item(), abar[480].item()
    x, t = torch.randn(64, 1, 28, 28), torch.full((64,), 500)

    @torch.no_grad()
    def step():
        eps = model(x, t)
        x0 = (x - math.sqrt(1 - a_t) * eps) / math.sqrt(a_t)
        return math.sqrt(a_prev) * x0 + math.sqrt(1 - a_prev) * eps
    return step


# Families kept in their own files (bench_<family>.py beside this script), each with a
# register(bench) function that adds its benchmarks with the decorator above.
def _register_families():
    import importlib
    import os
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    for family in ("bench_bert", "bench_t5", "bench_cyclegan", "bench_stylegan", "bench_vgg"):
        try:
            module = importlib.import_module(family)
        except ModuleNotFoundError as e:
            if e.name != family:
                raise
            print(f"bench_torch.py: {family}.py not found, its benchmarks are skipped", file=sys.stderr)
            continue
        module.register(bench)


_register_families()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--filter", default=".")
    p.add_argument("--min-time", type=float, default=1.0)
    p.add_argument("--list", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(0)
    rx = re.compile(a.filter)
    for name, setup in BENCHES:
        if not rx.search(name):
            continue
        if a.list:
            print(name)
            continue
        fn = setup()
        ms, min_ms, cpu_ms = timeit(fn, a.min_time)
        print(json.dumps({"name": name, "threads": a.threads, "ms": ms, "min_ms": min_ms, "cpu_ms": cpu_ms}),
              flush=True)


if __name__ == "__main__":
    sys.exit(main())
