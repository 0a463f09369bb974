"""A large chunked ensemble through the real command line: wall time, draws/s, peak memory.

    .venv/bin/python benchmarks/million.py                      # 1,000,000 draws into a temp file
    .venv/bin/python benchmarks/million.py --draws 30000 --output /tmp/e30k.nc
    .venv/bin/python benchmarks/million.py --draws 30000 solver.end_year=2030   # extra overrides

Runs `fentsim ensemble=large ensemble.size=N ensemble.chunk_size=C` (chunks written incrementally
into one NetCDF file, see configs/ensemble/large.yaml) as a child process, passes its output to
stderr, and prints one JSON line last: draws, chunk_size, wall_s, draws_per_s, peak_rss_mb (the
child's resource.getrusage ru_maxrss) and file_mb.  A temporary output is removed afterwards.
About 6.4 kB of disk a draw (annual outputs): 1,000,000 draws need ~6.5 GB free.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
FENTSIM = Path(sys.executable).parent / "fentsim"
DEFAULT_CHUNK = yaml.safe_load((REPO / "configs/ensemble/large.yaml").read_text())["ensemble"]["chunk_size"]


def run(draws: int, chunk_size: int, output: Path, overrides: list[str]) -> dict:
    """Run the ensemble into `output` (in fentsim's run folder) and return the measurements."""
    command = [str(FENTSIM), "ensemble=large", f"ensemble.size={draws}",
               f"ensemble.chunk_size={chunk_size}", f"hydra.run.dir={output.parent}",
               f"output.filename={output.name}", *overrides]
    started = time.perf_counter()
    proc = subprocess.run(command, stdout=sys.stderr, stderr=sys.stderr, cwd=output.parent)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"million: fentsim failed (exit {proc.returncode}): {' '.join(command)}")
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    return {"draws": draws, "chunk_size": chunk_size, "wall_s": round(wall, 2),
            "draws_per_s": round(draws / wall, 1), "peak_rss_mb": round(peak_kb / 1024, 1),
            "file_mb": round(output.stat().st_size / 2**20, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1_000_000, help="ensemble size (default 1e6)")
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK,
                        help=f"draws per chunk (default {DEFAULT_CHUNK}, as configs/ensemble/large.yaml)")
    parser.add_argument("--output", type=Path, default=None,
                        help="result file to keep (default: a temporary file, removed)")
    parser.add_argument("overrides", nargs="*", help="extra fentsim overrides, e.g. solver.end_year=2030")
    args = parser.parse_args()
    keep = args.output.resolve() if args.output else None
    if keep:
        keep.parent.mkdir(parents=True, exist_ok=True)
    # fentsim's run folder (.hydra/ etc.) is temporary; a kept file is moved out of it
    with tempfile.TemporaryDirectory(prefix=".fentsim_million_", dir=keep.parent if keep else None) as tmp:
        result = run(args.draws, args.chunk_size, Path(tmp) / "ensemble.nc", args.overrides)
        if keep:
            os.replace(Path(tmp) / "ensemble.nc", keep)
            result["output"] = str(keep)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
