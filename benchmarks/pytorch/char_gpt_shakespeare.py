#!/usr/bin/env python3
"""The char_gpt run on tiny Shakespeare in PyTorch, to put next to `gpt train` (examples/gpt.cpp).

Same recipe as `gpt train`'s defaults (nanoGPT's train.py with its CPU settings for
shakespeare_char): the file's sorted characters are the vocabulary, first 90% train,
last 10% validation; GPT with 4 pre-LN blocks, 4 heads, 128 wide, context 64, GELU,
tied head, no dropout; batches of 12 random windows; AdamW (betas 0.9, 0.99, weight
decay 0.1 on >= 2-d parameters only), lr 1e-3 with 100 warmup iterations and cosine
decay to 1e-4 at max_iters; gradient norm clipped at 1.0. Every --eval-interval
iterations, the mean loss of --eval-iters batches of each split.

Prints one line per evaluation and a final JSON line with the wall time of the
training iterations (evaluation excluded), the CPU time, and the last losses.

  /usr/bin/python3 char_gpt_shakespeare.py --text /path/to/tinyshakespeare.txt --threads 2 [--iters 2000]
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class GPT(nn.Module):
    def __init__(self, vocab, block, n_layer, n_head, n_embd):
        super().__init__()
        self.n_head = n_head
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
        # GPT-2 init
        for n, p in self.named_parameters():
            if n.endswith("bias"):
                nn.init.zeros_(p)
            elif p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * n_layer) if n.endswith("c_proj.weight") or n.endswith("mlp_proj.weight") \
                    else 0.02
                nn.init.normal_(p, 0.0, std)
        T = block
        self.register_buffer("mask", torch.ones(T, T, dtype=torch.bool).triu(1))

    def forward(self, idx):
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(T))
        for b in self.h:
            q, k, v = b.c_attn(b.ln_1(x)).split(x.shape[-1], 2)
            H, C = self.n_head, x.shape[-1]
            q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))
            att = (q @ k.transpose(-1, -2)) / math.sqrt(C // H)
            att = att.masked_fill(self.mask[:T, :T], float("-inf")).softmax(-1)
            x = x + b.c_proj((att @ v).transpose(1, 2).reshape(B, T, C))
            x = x + b.mlp_proj(F.gelu(b.c_fc(b.ln_2(x))))
        return self.lm_head(self.ln_f(x))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--text", default="/work/shared/data/tinyshakespeare.txt")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--eval-interval", type=int, default=250)
    ap.add_argument("--eval-iters", type=int, default=20)
    ap.add_argument("--final-eval-iters", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1337)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(a.seed)

    text = open(a.text, encoding="utf-8").read()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    n = int(len(text) * 0.9)
    train = torch.tensor([stoi[c] for c in text[:n]], dtype=torch.long)
    val = torch.tensor([stoi[c] for c in text[n:]], dtype=torch.long)
    B, T = 12, 64
    model = GPT(len(chars), T, 4, 4, 128)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.99))
    lr, min_lr, warmup, decay_iters = 1e-3, 1e-4, 100, a.iters

    def get_lr(it):
        if it < warmup:
            return lr * (it + 1) / (warmup + 1)
        if it > decay_iters:
            return min_lr
        r = (it - warmup) / (decay_iters - warmup)
        return min_lr + 0.5 * (1.0 + math.cos(math.pi * r)) * (lr - min_lr)

    def get_batch(data):
        ix = torch.randint(len(data) - T, (B,))
        return torch.stack([data[i:i + T] for i in ix]), torch.stack([data[i + 1:i + 1 + T] for i in ix])

    @torch.no_grad()
    def estimate(data, iters):
        model.eval()
        s = 0.0
        for _ in range(iters):
            x, y = get_batch(data)
            s += F.cross_entropy(model(x).view(-1, len(chars)), y.view(-1)).item()
        model.train()
        return s / iters

    t_train, cpu_train = 0.0, 0.0
    for it in range(a.iters + 1):
        if it % a.eval_interval == 0 or it == a.iters:
            k = a.final_eval_iters if it == a.iters else a.eval_iters
            tr, va = estimate(train, k), estimate(val, k)
            print(f"step {it}: train loss {tr:.4f}, val loss {va:.4f} ({t_train:.1f} s in training steps)", flush=True)
        if it == a.iters:
            break
        t0, c0 = time.perf_counter(), time.process_time()
        for g in opt.param_groups:
            g["lr"] = get_lr(it)
        x, y = get_batch(train)
        loss = F.cross_entropy(model(x).view(-1, len(chars)), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        t_train += time.perf_counter() - t0
        cpu_train += time.process_time() - c0
    print(json.dumps({"name": "char_gpt_shakespeare", "framework": "pytorch " + torch.__version__,
                      "threads": a.threads, "iters": a.iters, "train_wall_s": round(t_train, 2),
                      "train_cpu_s": round(cpu_train, 2), "ms_per_iter": round(1e3 * t_train / a.iters, 2),
                      "train_loss": round(tr, 4), "val_loss": round(va, 4)}))


if __name__ == "__main__":
    main()
