#!/usr/bin/env python3
"""Where a run's CPU goes, by component: reads `perf script` output of a
`perf record --call-graph dwarf` profile on stdin and prints each
component's share of the samples.

A sample is charged to the component of its innermost frame that names
one (walking from the leaf towards the root): an allocator frame makes it
`allocation` wherever it was called from; a copy or a map lookup is
charged to the code that called it. Kernel frames are skipped (charged to
their caller). Used by `ci/perf-components.sh`.
"""
import re
import sys

RULES = [
    ("allocation", r"^(malloc|_int_free|_int_malloc|_int_realloc|realloc|cfree|free|unlink_chunk|malloc_consolidate|__libc_malloc|__libc_free|__GI___libc_realloc|__GI___libc_free|__GI___libc_malloc|tcache_\w+|__rust_alloc|__rust_dealloc|__rust_realloc|alloc::alloc::|<alloc::alloc::Global)"),
    ("encoding", r"(bincode::|exactsim_engine::codec|serde::|crc32fast|<serde)"),
    ("oracles", r"(exactsim_model::checks|exactsim_model::finish|exactsim_model::report|exactsim_model::prefixes|exactsim_model::scenario::.*reference|batch_reference|::reference)"),
    ("history", r"(exactsim_sim::recorder|exactsim_model::history|exactsim_engine::observe)"),
    ("broker", r"exactsim_engine::broker(::|<|$)"),
    ("sink", r"(exactsim_engine::(sink|broker_sink|txn_pool|upsert|system)|exactsim_pg)"),
    ("engine", r"(exactsim_engine::|KeyedOperator|exactsim_scenarios::\w+::(Op|RunningSum|Balances))"),
    ("workload", r"(exactsim_scenarios::|exactsim_model::run::derive)"),
    ("simulator", r"(madsim::|naive_timer|async_task|exactsim_sim::|tokio::)"),
    ("harness", r"(exactsim::|exactsim_model::)"),
]
COMPILED = [(name, re.compile(rx)) for name, rx in RULES]


def classify(frames):
    for f in frames:
        for name, rx in COMPILED:
            if rx.search(f):
                return name
    return "other"


def main():
    counts = {}
    total = 0
    frames = []
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line.strip():
            if frames:
                c = classify(frames)
                counts[c] = counts.get(c, 0) + 1
                total += 1
                frames = []
            continue
        if not line.startswith((" ", "\t")):
            frames = []
            continue
        if "[kernel.kallsyms]" in line:
            continue
        m = re.match(r"\s*[0-9a-f]+ (.*?)(\+0x[0-9a-f]+)? \(", line)
        if m:
            frames.append(m.group(1))
    if frames:
        c = classify(frames)
        counts[c] = counts.get(c, 0) + 1
        total += 1
    print(f"{'component':<12} {'samples':>8} {'share':>7}")
    for name, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"{name:<12} {n:>8} {100.0 * n / max(total, 1):>6.1f}%")
    print(f"{'total':<12} {total:>8}")


if __name__ == "__main__":
    main()
