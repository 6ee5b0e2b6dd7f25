#!/usr/bin/env python3
"""The same kernels and reference models as genai_bench, timed in PyTorch (CPU, eager).

Run with Debian's python3-torch (1.13). Prints one JSON object per benchmark
({"name", "threads", "ms"}: median milliseconds per iteration) so that
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
    fn()  # warm up (allocator, lazy init)
    fn()
    times = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start >= min_time and len(times) >= 5:
            break
    return statistics.median(times) * 1e3


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
        ms = timeit(fn, a.min_time)
        print(json.dumps({"name": name, "threads": a.threads, "ms": ms}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
