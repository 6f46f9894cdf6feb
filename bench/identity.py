"""What identifying a large weights file costs: core.identity's sampled digest vs a full sha256, on one file.

    .venv/bin/python bench/identity.py [--mb 600] [--file PATH]

Writes PATH (default: a temporary file of --mb MiB of random bytes; or give an existing shard with --file), then times
`file_digest` (size + first MiB + 64 blocks of 64 KiB) and a full sha256 of the same file, both from a warm page
cache, and prints the ratio and the full hash's seconds per GB: what a full hash would add to every eval and every
curve point of a 14B model (about 28 GB of weights).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time

from profit_rl.core.identity import file_digest


def full_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def timed(fn, path: str, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn(path)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mb", type=int, default=600)
    p.add_argument("--file", default=None)
    args = p.parse_args()
    path, made = args.file, False
    if path is None:
        fd, path = tempfile.mkstemp(suffix=".safetensors")
        with os.fdopen(fd, "wb") as f:
            for _ in range(args.mb):
                f.write(os.urandom(1 << 20))
        made = True
    try:
        size_gb = os.path.getsize(path) / 1e9
        full_sha256(path)  # warm the page cache for both arms
        sampled, full = timed(file_digest, path), timed(full_sha256, path, repeats=1)
        print(f"{size_gb:.2f} GB: sampled digest {sampled * 1000:.1f} ms, full sha256 {full:.2f} s "
              f"({full / sampled:.0f}x); full sha256 {full / size_gb:.1f} s per GB, so ~{28 * full / size_gb / 60:.1f} "
              "min for a 14B model's 28 GB")
    finally:
        if made:
            os.unlink(path)


if __name__ == "__main__":
    main()
