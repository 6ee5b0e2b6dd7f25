#!/usr/bin/env python3
"""train_step/bert_mini in PyTorch (CPU, eager), the twin of benchmarks/bench_train_bert.cpp.

One AdamW(1e-4, weight decay 0.01 off biases / LayerNorm) step of BERT-mini masked
language modelling: vocab 30522, 4 post-LN layers, hidden 256, 4 heads, intermediate
1024 (GELU), 128 positions, 2 token types, MLM head (dense + GELU + LayerNorm, decoder
tied to the word embedding + bias) over the full vocabulary at every position; batch
32 x 128 random ids, no padding, dropout 0, 15% of the positions labelled (-100 elsewhere).
The model is Hugging Face's BertForMaskedLM written out (transformers is not needed).

bench_torch.py imports this file and calls register(bench). Standalone:
  bench_bert.py [--threads 1] [--min-time 3]      (prints one JSON line, as bench_torch.py)
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class TorchBertMLM(nn.Module):
    def __init__(self, vocab=30522, hidden=256, layers=4, heads=4, inter=1024, max_pos=128, types=2):
        super().__init__()
        self.H = heads
        self.word, self.pos, self.ttype = nn.Embedding(vocab, hidden, padding_idx=0), nn.Embedding(max_pos, hidden), \
            nn.Embedding(types, hidden)
        self.ln_emb = nn.LayerNorm(hidden, eps=1e-12)
        self.layers = nn.ModuleList()
        for _ in range(layers):
            l = nn.Module()
            l.q, l.k, l.v, l.o = (nn.Linear(hidden, hidden) for _ in range(4))
            l.ln1, l.ln2 = nn.LayerNorm(hidden, eps=1e-12), nn.LayerNorm(hidden, eps=1e-12)
            l.fc1, l.fc2 = nn.Linear(hidden, inter), nn.Linear(inter, hidden)
            self.layers.append(l)
        self.t_dense, self.t_ln = nn.Linear(hidden, hidden), nn.LayerNorm(hidden, eps=1e-12)
        self.bias = nn.Parameter(torch.zeros(vocab))
        for n, p in self.named_parameters():
            if p.dim() >= 2:
                nn.init.normal_(p, 0.0, 0.02)

    def forward(self, ids):
        B, T = ids.shape
        x = self.word(ids) + self.pos(torch.arange(T)) + self.ttype.weight[0]
        h = self.ln_emb(x)
        C = h.shape[-1]
        for l in self.layers:
            sp = lambda t: t.view(B, T, self.H, C // self.H).transpose(1, 2)
            q, k, v = sp(l.q(h)), sp(l.k(h)), sp(l.v(h))
            a = ((q @ k.transpose(-1, -2)) / math.sqrt(C // self.H)).softmax(-1) @ v
            h = l.ln1(h + l.o(a.transpose(1, 2).reshape(B, T, C)))
            h = l.ln2(h + l.fc2(F.gelu(l.fc1(h))))
        t = self.t_ln(F.gelu(self.t_dense(h)))
        return t @ self.word.weight.t() + self.bias


def make_step():
    torch.manual_seed(0)
    model = TorchBertMLM()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-4)
    x = torch.randint(0, 30522, (32, 128))
    y = torch.where(torch.rand(32, 128) < 0.15, x, torch.full_like(x, -100))

    def step():
        loss = F.cross_entropy(model(x).view(-1, 30522), y.view(-1), ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def register(bench):
    """Adds train_step/bert_mini to bench_torch.py's list (bench is its decorator factory)."""
    bench("train_step/bert_mini")(make_step)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--min-time", type=float, default=3.0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    fn = make_step()
    fn()
    fn()
    times, cpu = [], []
    start = time.perf_counter()
    while time.perf_counter() - start < a.min_time or len(times) < 5:
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    print(json.dumps({"name": "train_step/bert_mini", "threads": a.threads, "ms": statistics.median(times) * 1e3,
                      "min_ms": min(times) * 1e3, "cpu_ms": statistics.median(cpu) * 1e3}))


if __name__ == "__main__":
    main()
