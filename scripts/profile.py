#!/usr/bin/env python3
"""Symbolize `slos run --profile FILE` samples with a kernel's System.map.

usage: scripts/profile.py SAMPLES SYSTEM_MAP [TOP]

Prints the share of samples per function (ring 0) and one line for ring-3
samples, most frequent first: where an emulated boot spends its time.
"""
import bisect
import collections
import sys


def load_map(path):
    addrs, names = [], []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[1] in "tTwW":
                addrs.append(int(parts[0], 16))
                names.append(parts[2])
    order = sorted(range(len(addrs)), key=addrs.__getitem__)
    return [addrs[i] for i in order], [names[i] for i in order]


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    addrs, names = load_map(sys.argv[2])
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    counts, total = collections.Counter(), 0
    with open(sys.argv[1]) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 2:
                continue
            rip, cpl = int(parts[1], 16), int(parts[2]) if len(parts) > 2 else 0
            total += 1
            if cpl == 3:
                counts["[user]"] += 1
                continue
            i = bisect.bisect_right(addrs, rip) - 1
            counts[names[i] if i >= 0 else "[unknown]"] += 1
    print(f"{total} samples")
    for name, n in counts.most_common(top):
        print(f"{100.0 * n / max(total, 1):6.2f}%  {n:7d}  {name}")


if __name__ == "__main__":
    main()
