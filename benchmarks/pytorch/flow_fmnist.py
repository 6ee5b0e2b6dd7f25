#!/usr/bin/env python3
"""PyTorch side of the flow Fashion-MNIST comparison: trains the same RealNVP / Glow as
`flow train` (examples/flow.cpp) for the same number of steps, batch size and learning
rate, then reports the test bits/dim the same way (all 10000 test images, one uniform
dequantization sample each, (-log p(y) + D log 256) / (D log 2)).

The models are those of tests/fixtures/make_flow_fixtures.py (the golden-test mirrors of
include/genai/models/flow, same state-dict keys), so both sides train the same function
from different random initializations.

  flow_fmnist.py --model realnvp --steps 3000 --threads 2
  flow_fmnist.py --model glow --steps 1500 --batch 64 --threads 2

Prints progress and one final JSON line {"model", "steps", "batch", "test_bpd",
"train_seconds", "cpu_seconds", "threads"}. Run with Debian's python3-torch (1.13).
"""
import argparse
import gzip
import json
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures"))
from make_flow_fixtures import Flow, Glow, LogitTransform, RealNVP, ScaleShift  # noqa: E402


def read_idx(path):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return torch.frombuffer(bytearray(data[4 + 4 * ndim:]), dtype=torch.uint8).reshape(dims)


def load(root, split):
    for suffix in (".gz", ""):
        p = os.path.join(root, f"{split}-images-idx3-ubyte{suffix}")
        if os.path.exists(p):
            return read_idx(p).float().div(255).reshape(-1, 1, 28, 28)
    sys.exit(f"Fashion-MNIST not found in {root} (apt-get install dataset-fashion-mnist)")


def make(args):
    if args.model == "realnvp":
        return Flow(RealNVP(784, args.hidden if args.hidden > 0 else 512, args.couplings if args.couplings > 0 else 8),
                    (784,), LogitTransform(args.alpha))
    return Flow(Glow((1, 28, 28), n_levels=args.levels, n_steps=args.couplings if args.couplings > 0 else 8,
                     hidden=args.hidden if args.hidden > 0 else 64, lu=True), (1, 28, 28), ScaleShift(1.0, -0.5))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=["realnvp", "glow"], default="realnvp")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--hidden", type=int, default=-1)
    p.add_argument("--couplings", type=int, default=-1)
    p.add_argument("--levels", type=int, default=2)
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--eval-limit", type=int, default=-1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(a.seed)
    train, test = load(a.data, "train"), load(a.data, "t10k")
    if a.eval_limit > 0:
        test = test[:a.eval_limit]
    model = make(a)
    event = model.event_shape
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    d = math.prod(event)
    to_bpd = lambda nll: (nll + d * math.log(256)) / (d * math.log(2))  # noqa: E731
    print(f"{a.model}: {sum(p.numel() for p in model.parameters())} parameters, {a.steps} steps of batch {a.batch}",
          flush=True)
    t0, c0 = time.perf_counter(), time.process_time()
    step, perm, pos = 0, torch.randperm(len(train)), 0
    first = last = None
    while step < a.steps:
        if pos + a.batch > len(train):  # drop_last, reshuffle
            perm, pos = torch.randperm(len(train)), 0
        x = train[perm[pos:pos + a.batch]].reshape((-1,) + event)
        pos += a.batch
        y = model.dequantize(x, torch.rand_like(x))
        loss = -model.log_prob(y).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        last = to_bpd(loss.item())
        first = first if first is not None else last
        if step % 100 == 0 or step == a.steps:
            print(f"step {step}: train bits/dim {last:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    train_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    model.eval()
    gen = torch.Generator().manual_seed(a.seed + 2000)
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(test), 500):
            x = test[i:i + 500].reshape((-1,) + event)
            total += model.bits_per_dim(x, torch.rand(x.shape, generator=gen)).sum().item()
    bpd = total / len(test)
    print(json.dumps({"model": a.model, "steps": a.steps, "batch": a.batch, "lr": a.lr, "first_train_bpd": first,
                      "last_train_bpd": last, "test_bpd": bpd, "train_seconds": train_s, "cpu_seconds": cpu_s,
                      "threads": a.threads}), flush=True)


if __name__ == "__main__":
    main()
