#!/usr/bin/env python3
"""Plot the scaling sweep of `exactsim bench --csv FILE`: process CPU time
per run against input records, workers and checkpoints, each with its
least-squares line. Usage: ci/plot_bench.py [CSV] [PNG]
(defaults docs/bench/scaling.csv, docs/bench/scaling.png). Installs
matplotlib from PyPI if it is missing."""
import csv
import subprocess
import sys

try:
    import matplotlib
except ImportError:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "matplotlib"])
    import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

src = sys.argv[1] if len(sys.argv) > 1 else "docs/bench/scaling.csv"
dst = sys.argv[2] if len(sys.argv) > 2 else "docs/bench/scaling.png"
rows = list(csv.DictReader(open(src)))


def fit(xs, ys):
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    return my - b * mx, b


panels = [
    ("records", "records", "input records per run", "CPU us per record"),
    ("parallelism", "parallelism", "workers (20k records)", "CPU us per message"),
    ("checkpoints", "checkpoints", "completed checkpoints (20k records)", "CPU ms per checkpoint"),
]
fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
for ax, (sweep, xcol, xlabel, unit) in zip(axes, panels):
    pts = [r for r in rows if r["sweep"] == sweep]
    if not pts:
        continue
    xs = [float(r[xcol]) for r in pts]
    ys = [float(r["cpu_us"]) / 1000.0 for r in pts]
    ax.plot(xs, ys, "o", label="measured (least of 3 runs)")
    if sweep == "parallelism":
        # Cost per message at each parallelism: flat means linear in messages.
        msgs = [float(r["messages"]) for r in pts]
        ax2 = ax.twinx()
        ax2.plot(xs, [y * 1000.0 / m for y, m in zip(ys, msgs)], "s--", color="tab:red", label="CPU us per message")
        ax2.set_ylabel("CPU us per message", color="tab:red")
        ax2.set_ylim(bottom=0)
        a, b = fit(msgs, ys)
        ax.set_title(f"parallelism: {b * 1000:.2f} {unit} (fit on messages)")
    elif sweep == "records":
        # Log-log: a line of slope 1 through the first point is linear cost.
        sim = [float(r["sim_wall_us"]) / 1000.0 for r in pts]
        ax.plot(xs, sim, "^", color="tab:green", label="of which simulation (wall time: above CPU when the machine is loaded)")
        ax.plot([xs[0], xs[-1]], [ys[0], ys[0] * xs[-1] / xs[0]], ":", color="gray", label="linear from the first point")
        ax.set_xscale("log")
        ax.set_yscale("log")
        a, b = fit(xs, ys)
        ax.set_title(f"records: fitted {b * 1000:.1f} {unit} (log-log)")
    else:
        a, b = fit(xs, ys)
        lo, hi = min(xs), max(xs)
        ax.plot([lo, hi], [a + b * lo, a + b * hi], "-", label="least-squares line")
        scale = 1000.0 if sweep == "records" else 1.0
        ax.set_title(f"{sweep}: {b * scale:.2f} {unit}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("CPU ms per run")
    if sweep != "records":
        ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize=8)
fig.suptitle("exactsim bench: cost of a fault-free word_count run (simulation + oracles, one core)")
fig.tight_layout()
fig.savefig(dst, dpi=90)
print(f"wrote {dst}")
