"""The GPU check's parts that run inside the prepared environment, one process each (see gpu_check.py).

    python scripts/gpu_check_worker.py device RESULT.json
    python scripts/gpu_check_worker.py bench NAME ROWS.jsonl [--quick]

`device` needs torch alone. `bench` runs one `dlbench bench` benchmark and appends each result row to ROWS.jsonl as
soon as it is measured, so a part stopped at its time limit keeps the rows it finished; a name this checkout does
not have exits with NOT_AVAILABLE, one whose plugin failed to load with PLUGIN_FAILED.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys

NOT_AVAILABLE = 3
PLUGIN_FAILED = 4


def _driver_version() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    completed = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                               capture_output=True, text=True, timeout=20)
    return completed.stdout.strip().splitlines()[0] if completed.returncode == 0 and completed.stdout.strip() else None


def _gpu(index: int) -> dict:
    import torch

    properties = torch.cuda.get_device_properties(index)
    free, total = torch.cuda.mem_get_info(index)
    return {"index": index, "name": properties.name, "memory_gib": round(total / 2**30, 1),
            "free_gib": round(free / 2**30, 1), "capability": f"{properties.major}.{properties.minor}",
            "multiprocessors": properties.multi_processor_count}


def device_facts() -> dict:
    """The device, the versions and the float32 policy in force (what a timing depends on)."""
    import torch

    cuda = torch.cuda.is_available()
    return {
        "python": sys.version.split()[0], "platform": platform.platform(), "cpu_count": os.cpu_count(),
        "torch": torch.__version__, "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch_threads": torch.get_num_threads(),
        "cuda_available": cuda, "driver": _driver_version() if cuda else None,
        "gpus": [_gpu(index) for index in range(torch.cuda.device_count())] if cuda else [],
        "bf16_on_gpu": torch.cuda.is_bf16_supported() if cuda else None,
        "policy": {"cudnn.benchmark": torch.backends.cudnn.benchmark,
                   "cudnn.deterministic": torch.backends.cudnn.deterministic,
                   "cudnn.allow_tf32": torch.backends.cudnn.allow_tf32,
                   "cuda.matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32,
                   "float32_matmul_precision": torch.get_float32_matmul_precision()},
    }


def run_benchmark(name: str, rows_path: str, quick: bool) -> int:
    from dlbench.plugins import get_plugins

    plugins = get_plugins()
    if name not in plugins.benchmarks.names():
        failed = "; ".join(f"{info.name}: {info.error}" for info in plugins.failures())
        if failed:
            print(f"benchmark {name!r} not found; plugins that failed to load: {failed}")
            return PLUGIN_FAILED
        print(f"not available in this checkout: {name!r} (benchmarks here: {', '.join(plugins.benchmarks.names())})")
        return NOT_AVAILABLE
    with open(rows_path, "a") as rows:
        for row in plugins.benchmarks.get(name).factory(quick=quick):
            rows.write(json.dumps(row, default=str) + "\n")
            rows.flush()
            print(f"{row['name']}: {row['ratio']:.2f}x  {row.get('note', '')}", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parts = parser.add_subparsers(dest="part", required=True)
    device = parts.add_parser("device")
    device.add_argument("result")
    bench = parts.add_parser("bench")
    bench.add_argument("name")
    bench.add_argument("rows")
    bench.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.part == "device":
        facts = device_facts()
        with open(args.result, "w") as result:
            json.dump(facts, result)
        print(json.dumps(facts, indent=1))
        return 0
    return run_benchmark(args.name, args.rows, args.quick)


if __name__ == "__main__":
    sys.exit(main())
