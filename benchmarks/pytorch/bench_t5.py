"""T5 benchmark for bench_torch.py (imported by it; register(bench) adds the benchmarks).

  train_step/t5_mini   one AdamW(1e-3) step of a T5 v1.0 of BERT-mini size, as genai's
                       benchmarks/bench_train_t5.cpp: 4 encoder + 4 decoder blocks, d_model 256,
                       4 heads of d_kv 64, d_ff 1024, relu, relative position bias (32 buckets,
                       max distance 128), vocabulary 32128, tied head with the d_model^-0.5
                       rescale, no dropout; batch 32, source 128, target 128 random ids (no
                       padding), cross-entropy over all target tokens.

The model is written here (Hugging Face's T5 layout, without transformers): pre-norm
residual blocks with T5's RMS LayerNorm, attention without biases and without 1/sqrt(d).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def _bucket(rel, bidirectional, num_buckets=32, max_distance=128):
    buckets = 0
    if bidirectional:
        num_buckets //= 2
        buckets += (rel > 0).to(torch.long) * num_buckets
        rel = torch.abs(rel)
    else:
        rel = -torch.min(rel, torch.zeros_like(rel))
    max_exact = num_buckets // 2
    is_small = rel < max_exact
    large = max_exact + (torch.log(rel.float() / max_exact) / math.log(max_distance / max_exact)
                         * (num_buckets - max_exact)).to(torch.long)
    large = torch.min(large, torch.full_like(large, num_buckets - 1))
    return buckets + torch.where(is_small, rel, large)


class _Norm(nn.Module):
    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


class _Attn(nn.Module):
    def __init__(self, d, h, dk):
        super().__init__()
        self.h, self.dk = h, dk
        self.q = nn.Linear(d, h * dk, bias=False)
        self.k = nn.Linear(d, h * dk, bias=False)
        self.v = nn.Linear(d, h * dk, bias=False)
        self.o = nn.Linear(h * dk, d, bias=False)

    def forward(self, x, kv, bias):
        B, T, _ = x.shape
        sh = lambda t: t.view(B, -1, self.h, self.dk).transpose(1, 2)
        s = sh(self.q(x)) @ sh(self.k(kv)).transpose(2, 3)
        if bias is not None:
            s = s + bias
        y = F.softmax(s, dim=-1) @ sh(self.v(kv))
        return self.o(y.transpose(1, 2).reshape(B, T, -1))


class _FF(nn.Module):
    def __init__(self, d, dff):
        super().__init__()
        self.wi = nn.Linear(d, dff, bias=False)
        self.wo = nn.Linear(dff, d, bias=False)

    def forward(self, x):
        return self.wo(F.relu(self.wi(x)))


class _Block(nn.Module):
    def __init__(self, d, h, dk, dff, decoder):
        super().__init__()
        self.decoder = decoder
        self.ln0, self.sa = _Norm(d), _Attn(d, h, dk)
        if decoder:
            self.ln1, self.ca = _Norm(d), _Attn(d, h, dk)
        self.ln2, self.ff = _Norm(d), _FF(d, dff)

    def forward(self, x, bias, enc=None):
        n = self.ln0(x)
        x = x + self.sa(n, n, bias)
        if self.decoder:
            x = x + self.ca(self.ln1(x), enc, None)
        return x + self.ff(self.ln2(x))


class _Stack(nn.Module):
    def __init__(self, n, d, h, dk, dff, decoder):
        super().__init__()
        self.decoder = decoder
        self.rel = nn.Embedding(32, h)
        self.blocks = nn.ModuleList([_Block(d, h, dk, dff, decoder) for _ in range(n)])
        self.final = _Norm(d)

    def forward(self, x, enc=None):
        T = x.shape[1]
        pos = torch.arange(T)
        bias = self.rel(_bucket(pos[None, :] - pos[:, None], not self.decoder)).permute(2, 0, 1)[None]
        if self.decoder:
            bias = bias + torch.triu(torch.full((T, T), torch.finfo(x.dtype).min), 1)
        for b in self.blocks:
            x = b(x, bias, enc)
        return self.final(x)


class TorchT5(nn.Module):
    def __init__(self, vocab=32128, d=256, h=4, dk=64, dff=1024, layers=4):
        super().__init__()
        self.d = d
        self.shared = nn.Embedding(vocab, d)
        self.encoder = _Stack(layers, d, h, dk, dff, False)
        self.decoder = _Stack(layers, d, h, dk, dff, True)

    def forward(self, src, dec_in):
        enc = self.encoder(self.shared(src))
        h = self.decoder(self.shared(dec_in), enc) * self.d ** -0.5
        return h @ self.shared.weight.t()


def register(bench):
    @bench("train_step/t5_mini")
    def _():
        V, B, S, T = 32128, 32, 128, 128
        model = TorchT5(V)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        src, labels = torch.randint(2, V, (B, S)), torch.randint(2, V, (B, T))
        dec_in = torch.cat([torch.zeros(B, 1, dtype=torch.long), labels[:, :-1]], 1)

        def step():
            loss = F.cross_entropy(model(src, dec_in).reshape(-1, V), labels.reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
        return step
