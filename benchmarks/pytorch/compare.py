#!/usr/bin/env python3
"""genai next to its peers: runs the benchmark binaries and PyTorch, prints the tables.

Runs, on this machine and in this order:
  1. genai_peak --json            the measured FMA peak and STREAM bandwidth (the "% of peak" denominators)
  2. genai_bench                  at GENAI_NUM_THREADS = 1 and 2 (Google Benchmark JSON, repetitions)
  3. peer_bench (if built)        OpenBLAS, oneDNN and Eigen on the same problems, one library per process
  4. bench_torch.py               the same kernels and train steps in PyTorch (CPU, eager), 1 and 2 threads
and prints two Markdown tables: the kernel table (time, GFLOP/s or GB/s, % of the
measured peak, time ratios to OpenBLAS / oneDNN / Eigen / PyTorch) and the
train-step table (ms per step, ratio to PyTorch, the target of docs/benchmarks.md),
followed by a check of every target of the performance issue. With --write-doc the
same text replaces what lies between the markers
    <!-- BEGIN compare.py -->  ...  <!-- END compare.py -->
in docs/benchmarks.md (appended when the markers are missing).

Usage (from the repository root, after building the benchmarks in Release):
  benchmarks/pytorch/compare.py --build-dir build/release [--write-doc docs/benchmarks.md]
  benchmarks/pytorch/compare.py --save results.json ...   # also keep the raw numbers
  benchmarks/pytorch/compare.py --load results.json ...   # re-make the tables without running anything

Ratios are genai time / peer time: below 1 genai is faster. Times are the median
over repetitions (--stat min takes the best repetition instead). On a machine that
other jobs share, --basis cpu measures by CPU time instead of wall time: each
process's CPU time (all its threads) divided by the thread count, i.e. the time
the run would take if its threads had the cores to themselves; the "cpu/wall"
column shows how busy the threads were (1 thread: 1.0 = alone on a core).

Environment: OpenBLAS and PyTorch run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
removed from their environment (they force a slower kernel), with OMP_NUM_THREADS,
MKL_NUM_THREADS, OPENBLAS_NUM_THREADS and GENAI_NUM_THREADS set to the thread count.
Nothing else is changed. PyTorch runs on /usr/bin/python3 (Debian's python3-torch)
unless --python says otherwise.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- BEGIN compare.py -->", "<!-- END compare.py -->"

# Targets of the performance issue for whole training steps: genai time / PyTorch time.
TRAIN_TARGETS = {"vae": 0.5, "char_gpt": 0.5, "char_lstm": 0.5, "realnvp": 0.5,
                 "dcgan": 1.0, "ddpm_unet": 1.0, "vgg_style": 1.0}

# Memory-bound kernels: which STREAM figure is their bandwidth limit (arrays read + written).
STREAM_OF = {"kernel/add": "add", "kernel/add_baseline": "add", "kernel/gelu": "copy", "kernel/copy_baseline": "copy",
             "kernel/copy_baseline/memcpy": "copy", "kernel/layernorm": "copy", "kernel/softmax": "copy"}


# ---- running ----------------------------------------------------------------------------

def env_for(threads, unset_openblas=False):
    env = dict(os.environ)
    if unset_openblas:
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    t = str(threads)
    env.update({"GENAI_NUM_THREADS": t, "OMP_NUM_THREADS": t, "MKL_NUM_THREADS": t, "OPENBLAS_NUM_THREADS": t})
    return env


def run(cmd, env, what):
    print(f"[compare] {what}: {' '.join(str(c) for c in cmd)}", file=sys.stderr, flush=True)
    p = subprocess.run([str(c) for c in cmd], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        raise SystemExit(f"compare.py: {what} failed with exit code {p.returncode}")
    return p.stdout


def clean_name(name):
    """kernel/sgemm/256/process_time/real_time -> kernel/sgemm/256"""
    name = re.sub(r"/(process_time|real_time|manual_time|min_time:[^/]*|repeats:\d+)", "", name)
    return re.sub(r"_(mean|median|stddev|cv)$", "", name)


TIME_SCALE = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}
GBENCH_FIELDS = {"name", "family_index", "per_family_instance_index", "run_name", "run_type", "repetitions",
                 "repetition_index", "threads", "iterations", "real_time", "cpu_time", "time_unit", "aggregate_name",
                 "aggregate_unit", "label", "error_occurred", "error_message"}


def parse_gbench(text):
    """Google Benchmark JSON -> {name: {"real": [ms...], "cpu": [ms...], "work": {counter: per-iteration amount}}}."""
    data = json.loads(text)
    out = {}
    for b in data["benchmarks"]:
        if b.get("run_type") != "iteration" or b.get("error_occurred"):
            continue
        name = clean_name(b["run_name"])
        scale = TIME_SCALE[b["time_unit"]]
        real, cpu = b["real_time"] * scale, b["cpu_time"] * scale
        r = out.setdefault(name, {"real": [], "cpu": [], "work": {}, "label": b.get("label", "")})
        r["real"].append(real)
        r["cpu"].append(cpu)
        for k, v in b.items():
            if k in GBENCH_FIELDS or not isinstance(v, (int, float)):
                continue
            if k == "us/op":  # inverted rate: microseconds per op = real time / ops
                r["work"]["ops"] = real * 1e3 / v if v else 0.0
            else:  # an iteration-invariant rate counter (per real second): amount per iteration
                r["work"][k] = v * real * 1e-3
    return {"context": data.get("context", {}), "results": out}


def gbench_cmd(exe, args, reps):
    cmd = [exe, "--benchmark_format=json", f"--benchmark_min_time={args.min_time}",
           f"--benchmark_repetitions={reps}"]
    if args.filter:
        cmd.append(f"--benchmark_filter={args.filter}")
    return cmd


def run_all(args):
    build = Path(args.build_dir)
    bench_dir = build / "benchmarks"
    raw = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "machine": machine_info(),
           "threads": args.threads, "stat": args.stat, "basis": args.basis, "genai": {}, "peers": {}, "torch": {},
           "peak": None}
    peak_exe = bench_dir / "genai_peak"
    if peak_exe.exists() and not args.skip_peak:
        raw["peak"] = json.loads(run([peak_exe, "--json", "--threads", ",".join(map(str, args.threads))],
                                     env_for(1), "genai_peak"))
    for t in args.threads:
        raw["genai"][str(t)] = parse_gbench(run(gbench_cmd(bench_dir / "genai_bench", args, args.repetitions),
                                                env_for(t), f"genai_bench, {t} thread(s)"))
    peer_exe = bench_dir / "peers" / "peer_bench"
    if peer_exe.exists() and not args.skip_peers:
        for t in args.threads:
            merged = {"context": {}, "results": {}}
            for lib in ("openblas", "onednn", "eigen"):
                cmd = [c for c in gbench_cmd(peer_exe, args, args.repetitions)
                       if not str(c).startswith("--benchmark_filter")]
                cmd.append(f"--benchmark_filter=^peer/{lib}/")
                if args.filter:  # only the peers of the genai benchmarks that ran
                    rx = re.compile(args.filter)
                    names = [n.replace("kernel/", f"peer/{lib}/", 1) for n in raw["genai"][str(t)]["results"]
                             if rx.search(n)]
                    if not names:
                        continue
                    cmd[-1] = "--benchmark_filter=^(" + "|".join(re.escape(n) for n in names) + ")(/|$)"
                r = parse_gbench(run(cmd, env_for(t, unset_openblas=True), f"peer_bench {lib}, {t} thread(s)"))
                merged["context"].update(r["context"])
                merged["results"].update(r["results"])
            raw["peers"][str(t)] = merged
    if not args.skip_torch:
        script = Path(__file__).resolve().parent / "bench_torch.py"
        for t in args.threads:
            cmd = [args.python, script, "--threads", t, "--min-time", args.torch_min_time]
            if args.filter:
                cmd += ["--filter", args.filter]
            text = run(cmd, env_for(t, unset_openblas=True), f"PyTorch, {t} thread(s)")
            rows = {}
            for line in text.splitlines():
                line = line.strip()
                if line.startswith("{"):
                    d = json.loads(line)
                    rows[d["name"]] = d
            raw["torch"][str(t)] = rows
    return raw


def machine_info():
    cpu, flags = "unknown", set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    isa = "AVX-512F" if "avx512f" in flags else ("AVX2+FMA" if {"avx2", "fma"} <= flags else "no AVX2")
    info = {"cpu": cpu, "isa": isa, "cores": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version()}
    try:
        info["lscpu"] = subprocess.run(["lscpu"], stdout=subprocess.PIPE, text=True).stdout
    except OSError:
        pass
    try:
        info["load_avg"] = os.getloadavg()
    except OSError:
        pass
    return info


# ---- statistics -----------------------------------------------------------------------

def pick(values, stat):
    return min(values) if stat == "min" else statistics.median(values)


def gb_time(r, threads, stat, basis):
    """One genai / peer result -> (ms per iteration, cpu/wall ratio)."""
    real = pick(r["real"], stat)
    cpu = pick(r["cpu"], stat)
    busy = cpu / real if real > 0 else 0.0
    return (cpu / threads if basis == "cpu" else real), busy


def torch_time(d, threads, stat, basis):
    if basis == "cpu" and "cpu_ms" in d:
        return d["cpu_ms"] / threads
    if stat == "min" and "min_ms" in d:
        return d["min_ms"]
    return d["ms"]


def peak_row(raw, threads):
    if not raw.get("peak"):
        return None
    for row in raw["peak"]["rows"]:
        if row["threads"] == threads:
            return row
    return None


def flop_peak(row):
    """GFLOP/s: the larger of the wall-clock and the CPU-time measurement (the CPU-time one is
    immune to other jobs on the machine; the larger is the conservative denominator)."""
    return max(row.get("fma_gflops_avx2", 0), row.get("fma_gflops_avx2_cpu", 0), row.get("fma_gflops_avx512", 0),
               row.get("fma_gflops_avx512_cpu", 0))


def bw_peak(row, kind):
    return max(row.get(f"stream_{kind}_gbs", 0), row.get(f"stream_{kind}_gbs_cpu", 0))


# ---- tables ---------------------------------------------------------------------------

def fmt_ms(ms):
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    if ms >= 1:
        return f"{ms:.2f}"
    return f"{ms:.3f}"


def fmt_ratio(x):
    return "—" if x is None else f"{x:.2f}"


def kernel_sort_key(name):
    parts = name.split("/")
    return [int(p) if p.isdigit() else p for p in parts]


def kernel_rows(raw, t, stat, basis):
    g = raw["genai"].get(str(t), {}).get("results", {})
    peers = raw["peers"].get(str(t), {}).get("results", {})
    torch = raw["torch"].get(str(t), {})
    prow = peak_row(raw, t)
    rows = []
    for name in sorted((n for n in g if n.startswith("kernel/")), key=kernel_sort_key):
        r = g[name]
        ms, busy = gb_time(r, t, stat, basis)
        rate, unit, pct = None, "", None
        work = r["work"]
        if "FLOP/s" in work:
            rate, unit = work["FLOP/s"] / (ms * 1e-3) * 1e-9, "GFLOP/s"
            if prow:
                pct = 100 * rate / flop_peak(prow)
        elif "bytes/s" in work:
            rate, unit = work["bytes/s"] / (ms * 1e-3) * 1e-9, "GB/s"
            if prow and name in STREAM_OF:
                pct = 100 * rate / bw_peak(prow, STREAM_OF[name])
        elif "ops" in work and work["ops"]:
            rate, unit = ms * 1e3 / work["ops"], "µs/op"
        ratios = {}
        for lib in ("openblas", "onednn", "eigen"):
            p = peers.get(name.replace("kernel/", f"peer/{lib}/"))
            ratios[lib] = ms / gb_time(p, t, stat, basis)[0] if p else None
        tr = torch.get(name)
        ratios["torch"] = ms / torch_time(tr, t, stat, basis) if tr else None
        rows.append({"name": name, "ms": ms, "busy": busy, "rate": rate, "unit": unit, "pct": pct, **ratios})
    return rows


def kernel_table(raw, t, stat, basis):
    rows = kernel_rows(raw, t, stat, basis)
    if not rows:
        return ""
    out = [f"| kernel ({t} thread{'s' if t > 1 else ''}) | ms | rate | % of peak | ÷ OpenBLAS | ÷ oneDNN | ÷ Eigen "
           f"| ÷ PyTorch | cpu/wall |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        rate = "—" if r["rate"] is None else (f"{r['rate']:.2f} {r['unit']}" if r["unit"] == "µs/op"
                                              else f"{r['rate']:.1f} {r['unit']}")
        pct = "—" if r["pct"] is None else f"{r['pct']:.0f}%"
        out.append(f"| `{r['name']}` | {fmt_ms(r['ms'])} | {rate} | {pct} | {fmt_ratio(r['openblas'])} | "
                   f"{fmt_ratio(r['onednn'])} | {fmt_ratio(r['eigen'])} | {fmt_ratio(r['torch'])} | {r['busy']:.2f} |")
    return "\n".join(out)


def train_rows(raw, stat, basis):
    names = set()
    for t in raw["threads"]:
        names |= {n for n in raw["genai"].get(str(t), {}).get("results", {}) if n.startswith("train_step/")}
        names |= {n for n in raw["torch"].get(str(t), {}) if n.startswith("train_step/")}
    rows = []
    for name in sorted(names):
        row = {"name": name, "target": TRAIN_TARGETS.get(name.split("/", 1)[1])}
        for t in raw["threads"]:
            g = raw["genai"].get(str(t), {}).get("results", {}).get(name)
            p = raw["torch"].get(str(t), {}).get(name)
            gms = gb_time(g, t, stat, basis)[0] if g else None
            pms = torch_time(p, t, stat, basis) if p else None
            row[t] = (gms, pms, gms / pms if gms and pms else None)
        # genai at its largest thread count against PyTorch at whichever thread count is fastest for it
        # (Debian's PyTorch 1.13 is often slower at 2 threads than at 1 on these small steps).
        top = max(raw["threads"])
        pbest = [(row[t][1], t) for t in raw["threads"] if row[t][1]]
        if row[top][0] and pbest:
            pms, pt = min(pbest)
            row["best"] = (pms, pt, row[top][0] / pms)  # PyTorch ms, its thread count, genai / PyTorch
        rows.append(row)
    return rows


def train_table(raw, stat, basis):
    rows = train_rows(raw, stat, basis)
    if not rows:
        return "(no `train_step/...` benchmarks were run)"
    head = "| train step |"
    sep = "|---|"
    for t in raw["threads"]:
        head += f" genai ms ({t}T) | PyTorch ms ({t}T) | ratio ({t}T) |"
        sep += "---:|---:|---:|"
    top = max(raw["threads"])
    head += f" genai ({top}T) ÷ PyTorch best | target | met |"
    sep += "---:|---:|:---:|"
    out = [head, sep]
    for r in rows:
        line = f"| `{r['name']}` |"
        for t in raw["threads"]:
            gms, pms, ratio = r[t]
            line += f" {fmt_ms(gms) if gms else '—'} | {fmt_ms(pms) if pms else '—'} | {fmt_ratio(ratio)} |"
        b = r.get("best")
        line += f" {fmt_ratio(b[2])} ({b[1]}T) |" if b else " — |"
        target = r["target"]
        ratios = [r[t][2] for t in raw["threads"] if r[t][2] is not None]
        met = "—" if target is None or not ratios else ("yes" if max(ratios) <= target else "no")
        line += f" {'≤ ' + format(target, '.1f') if target else '—'} | {met} |"
        out.append(line)
    return "\n".join(out)


# ---- target checks ---------------------------------------------------------------------

def targets(raw, stat, basis):
    lines = []
    ts = raw["threads"]
    t2 = 2 if 2 in ts else max(ts)
    g2 = raw["genai"].get(str(t2), {}).get("results", {})
    p2 = raw["peers"].get(str(t2), {}).get("results", {})
    prow = peak_row(raw, t2)

    def ms_of(res, name, t=t2):
        r = res.get(name)
        return gb_time(r, t, stat, basis)[0] if r else None

    # sgemm vs OpenBLAS, and the transposed variants vs the plain one
    for n in (256, 512, 1024, 2048):
        g = ms_of(g2, f"kernel/sgemm/{n}")
        o = ms_of(p2, f"peer/openblas/sgemm/{n}")
        if g and o:
            lines.append(f"- sgemm n={n}, {t2} threads: genai / OpenBLAS time = {g / o:.2f} (target ≤ 1.00): "
                         f"{'met' if g <= o else 'missed'}")
        for v in ("tn", "nt"):
            gv = ms_of(g2, f"kernel/sgemm_{v}/{n}")
            if g and gv:
                lines.append(f"  - sgemm_{v} n={n}: {gv / g:.2f}× the plain time (target ≤ 1.10): "
                             f"{'met' if gv <= 1.10 * g else 'missed'}")
    # conv: % of peak, at every thread count
    for t in ts:
        prow_t = peak_row(raw, t)
        gt = raw["genai"].get(str(t), {}).get("results", {})
        if not prow_t:
            continue
        pk = flop_peak(prow_t)
        for which in ("forward", "backward"):
            r = gt.get(f"kernel/conv2d_3x3/{which}")
            if r:
                ms = gb_time(r, t, stat, basis)[0]
                rate = r["work"]["FLOP/s"] / (ms * 1e-3) * 1e-9
                lines.append(f"- conv2d 3×3 {which}, {t} thread{'s' if t > 1 else ''}: {rate:.1f} GFLOP/s = "
                             f"{100 * rate / pk:.0f}% of the measured peak {pk:.0f} (target ≥ 50%): "
                             f"{'met' if rate >= 0.5 * pk else 'missed'}")
    # attention fwd+bwd vs the GEMM time for the same FLOPs: at the rate of the batched GEMMs
    # of attention's own shapes (kernel/attention/gemm_reference), and of kernel/sgemm/512
    r = g2.get("kernel/attention/forward_backward")
    for ref_name in ("kernel/attention/gemm_reference", "kernel/sgemm/512"):
        ref = g2.get(ref_name)
        if not (r and ref):
            continue
        ms = gb_time(r, t2, stat, basis)[0]
        gemm_rate = ref["work"]["FLOP/s"] / (gb_time(ref, t2, stat, basis)[0] * 1e-3)
        gemm_ms = r["work"]["FLOP/s"] / gemm_rate * 1e3
        lines.append(f"- attention forward+backward, {t2} threads: {ms:.1f} ms = {ms / gemm_ms:.2f}× the time of "
                     f"the same FLOPs at the rate of {ref_name} ({gemm_ms:.1f} ms) (target ≤ 1.5): "
                     f"{'met' if ms <= 1.5 * gemm_ms else 'missed'}")
    # memory-bound kernels: % of STREAM
    for t in ts:
        prow_t = peak_row(raw, t)
        gt = raw["genai"].get(str(t), {}).get("results", {})
        if not prow_t:
            continue
        for name in ("kernel/add", "kernel/gelu", "kernel/layernorm", "kernel/softmax"):
            r = gt.get(name)
            if not r:
                continue
            ms = gb_time(r, t, stat, basis)[0]
            rate = r["work"]["bytes/s"] / (ms * 1e-3) * 1e-9
            bw = bw_peak(prow_t, STREAM_OF[name])
            lines.append(f"- {name}, {t} thread{'s' if t > 1 else ''}: {rate:.1f} GB/s = {100 * rate / bw:.0f}% of "
                         f"STREAM {STREAM_OF[name]} {bw:.1f} GB/s (target ≥ 70%): {'met' if rate >= 0.7 * bw else 'missed'}")
    # op overhead
    for t in ts:
        r = raw["genai"].get(str(t), {}).get("results", {}).get("kernel/op_overhead")
        if r and r["work"].get("ops"):
            us = gb_time(r, t, stat, basis)[0] * 1e3 / r["work"]["ops"]
            lines.append(f"- op overhead, {t} thread{'s' if t > 1 else ''}: {us:.2f} µs per add (forward + graph + "
                         f"backward) (target ≤ 1 µs): {'met' if us <= 1.0 else 'missed'}")
    # train steps
    for row in train_rows(raw, stat, basis):
        if row["target"] is None:
            continue
        for t in ts:
            gms, pms, ratio = row[t]
            if ratio is not None:
                lines.append(f"- {row['name']}, {t} thread{'s' if t > 1 else ''}: {ratio:.2f}× PyTorch "
                             f"(target ≤ {row['target']:.1f}): {'met' if ratio <= row['target'] else 'missed'}")
        b = row.get("best")
        if b:
            pms, pt, ratio = b
            lines.append(f"- {row['name']}, genai at {max(ts)} threads vs PyTorch's fastest setting ({pt} "
                         f"thread{'s' if pt > 1 else ''}, {fmt_ms(pms)} ms): {ratio:.2f}× "
                         f"(target ≤ {row['target']:.1f}): {'met' if ratio <= row['target'] else 'missed'}")
    return "\n".join(lines)


def report(raw, stat, basis):
    m = raw["machine"]
    out = [f"Measured {raw['date']} on {m['cpu']} ({m['isa']}, {m['cores']} cores), Linux {m['kernel']}; "
           f"times: {'median' if stat == 'median' else 'best'} of the repetitions, "
           f"{'wall clock' if basis == 'real' else 'process CPU time ÷ threads'}."]
    if m.get("load_avg"):
        la = m["load_avg"]
        out.append(f"Load average when the run started: {la[0]:.2f} / {la[1]:.2f} / {la[2]:.2f} (1 / 5 / 15 min).")
    if raw.get("peak"):
        out.append("")
        out.append("| threads | FMA peak GFLOP/s (wall / CPU time) | STREAM copy GB/s | STREAM add GB/s | "
                   "STREAM triad GB/s |")
        out.append("|---:|---:|---:|---:|---:|")
        for row in raw["peak"]["rows"]:
            out.append(f"| {row['threads']} | {row['fma_gflops_avx2']:.1f} / {row.get('fma_gflops_avx2_cpu', 0):.1f} | "
                       f"{row['stream_copy_gbs']:.1f} | {row['stream_add_gbs']:.1f} | {row['stream_triad_gbs']:.1f} |")
    ctx = {}
    for t in raw["threads"]:
        ctx.update(raw["peers"].get(str(t), {}).get("context", {}))
    if ctx.get("openblas_core") or ctx.get("onednn_version"):
        out.append("")
        out.append(f"Peers: OpenBLAS {ctx.get('openblas_config', '?').strip()} (core {ctx.get('openblas_core', '?')}), "
                   f"oneDNN {ctx.get('onednn_version', '?')}, Eigen (peer_bench, -O3 -march=native).")
    for t in raw["threads"]:
        tab = kernel_table(raw, t, stat, basis)
        if tab:
            out += ["", f"#### Kernels, {t} thread{'s' if t > 1 else ''}", "", tab]
    out += ["", "#### Training steps", "", train_table(raw, stat, basis)]
    out += ["", "#### Targets", "", targets(raw, stat, basis) or "(nothing to check)"]
    return "\n".join(out) + "\n"


def write_doc(path, text):
    p = Path(path)
    doc = p.read_text() if p.exists() else "# Benchmarks\n"
    block = f"{BEGIN}\n<!-- generated by benchmarks/pytorch/compare.py; do not edit by hand -->\n\n{text}\n{END}"
    if BEGIN in doc and END in doc:
        a, b = doc.index(BEGIN), doc.index(END) + len(END)
        doc = doc[:a] + block + doc[b:]
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    p.write_text(doc)
    print(f"[compare] wrote {p}", file=sys.stderr)


def default_python():
    for cand in ("/usr/bin/python3", sys.executable):
        if cand and Path(cand).exists():
            ok = subprocess.run([cand, "-c", "import torch"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if ok.returncode == 0:
                return cand
    return shutil.which("python3") or sys.executable


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build-dir", default=str(ROOT / "build" / "release"), help="CMake build dir with the benchmarks")
    p.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    p.add_argument("--filter", default="", help="regex on benchmark names (all of them by default)")
    p.add_argument("--min-time", type=float, default=0.5, help="Google Benchmark min time per repetition (s)")
    p.add_argument("--repetitions", type=int, default=3)
    p.add_argument("--torch-min-time", type=float, default=1.5, help="bench_torch.py min time per benchmark (s)")
    p.add_argument("--stat", choices=("median", "min"), default="median")
    p.add_argument("--basis", choices=("real", "cpu"), default="real",
                   help="wall-clock time, or process CPU time / threads (for a shared machine)")
    p.add_argument("--python", default=None, help="Python with torch (default: /usr/bin/python3)")
    p.add_argument("--skip-torch", action="store_true")
    p.add_argument("--skip-peers", action="store_true")
    p.add_argument("--skip-peak", action="store_true")
    p.add_argument("--save", help="write the raw results (JSON) here")
    p.add_argument("--load", help="make the tables from raw results saved by --save; run nothing")
    p.add_argument("--write-doc", help="replace the generated block of this Markdown file (docs/benchmarks.md)")
    a = p.parse_args()
    a.threads = [int(x) for x in a.threads.split(",") if x]
    if a.load:
        raw = json.loads(Path(a.load).read_text())
    else:
        a.python = a.python or default_python()
        raw = run_all(a)
    if a.save:
        Path(a.save).write_text(json.dumps(raw, indent=1))
    text = report(raw, a.stat, a.basis)
    print(text)
    if a.write_doc:
        write_doc(a.write_doc, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
