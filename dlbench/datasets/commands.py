"""`dlbench data list | info NAME | prepare NAME [--path FILE] | verify NAME | preview NAME`."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from dlbench.datasets import dsprites, files, mpi3d, register_datasets, shapes3d
from dlbench.errors import DataError, UnknownNameError

# name -> (published file names, published checks, whether a checksum mismatch is fatal)
OFFICIAL_FILES = {
    "dsprites": ((dsprites.NPZ_NAME, dsprites.HDF5_NAME), dsprites.FILE_CHECKS, True),
    "shapes3d": ((shapes3d.FILE_NAME,), shapes3d.FILE_CHECKS, True),
    **{f"mpi3d_{v}": ((f"mpi3d_{v}.npz",), mpi3d.FILE_CHECKS, False) for v in mpi3d.VARIANTS},
}
PREVIEW_COLUMNS = 8


def _factory(name: str):
    factories = register_datasets()
    if name not in factories:
        raise UnknownNameError(f"dataset {name!r} is not built in; choose from "
                               f"{sorted(factories)}")
    return factories[name]


def _build(args, source: str):
    return _factory(args.name)(source=source, data_dir=args.data_dir, cache_dir=args.cache_dir,
                               path=args.path)


def _official_file(args) -> Path:
    names = OFFICIAL_FILES[args.name][0]
    found = files.find_file(args.path, files.resolve_data_dir(args.data_dir), names)
    if found is None:
        raise DataError(f"{args.name}: none of {list(names)} in the data directory "
                        f"{files.resolve_data_dir(args.data_dir)}; set DLBENCH_DATA_DIR, "
                        "--data-dir or --path")
    return found


def list_datasets(args) -> int:
    folder = files.resolve_data_dir(args.data_dir)
    for name in sorted(register_datasets()):
        names, _, _ = OFFICIAL_FILES[name]
        found = files.find_file(None, folder, names)
        print(f"{name:16s} official: {found or 'not found (' + ' or '.join(names) + ')'}; "
              "procedural: available")
    return 0


def info(args) -> int:
    print(json.dumps(_build(args, args.source).describe(), indent=1))
    return 0


def prepare(args) -> int:
    dataset = _build(args, "official")
    facts = dataset.describe()
    print(f"{args.name}: ready from {facts['file']} ({len(dataset)} observations; "
          f"cache {facts.get('cache', 'none: memory-mapped in place')})")
    return 0


def verify(args) -> int:
    path = _official_file(args)
    _, checks, strict = OFFICIAL_FILES[args.name]
    stamp = files.verify_source(path, checks.get(path.name), strict=strict,
                                cache_dir=files.resolve_cache_dir(args.cache_dir), force=True)
    reference = "matches the published reference" if stamp["matches_reference"] and \
        stamp["expected"] else "no published checksum to compare" if not stamp["expected"] \
        else "DOES NOT match the published reference"
    print(f"{path}: {stamp['bytes']} bytes, {stamp['algorithm']} {stamp['digest']} ({reference})")
    cache = _build(args, "official").describe().get("cache")
    if cache:
        print(f"{cache}: sha256 {files.verify_cache(Path(cache))} (as written)")
    return 0


def preview(args) -> int:
    """A PNG grid: one row per factor, that factor stepped across its classes, the others held
    at one seeded random draw."""
    from matplotlib.image import imsave  # only the preview needs matplotlib

    dataset = _build(args, args.source)
    base = dataset.sample_factors(1, torch.Generator().manual_seed(args.seed))
    rows = []
    for k, size in enumerate(dataset.factor_sizes):
        factors = base.repeat(PREVIEW_COLUMNS, 1)
        factors[:, k] = torch.linspace(0, size - 1, PREVIEW_COLUMNS).round().long()
        rows.append(dataset.observations_from_factors(factors))
    images = torch.stack(rows).cpu()  # (factors, columns, C, H, W)
    num_rows, num_columns, channels, height, width = images.shape
    sheet = images.permute(0, 3, 1, 4, 2).reshape(num_rows * height, num_columns * width,
                                                  channels)
    out = Path(args.out or f"{args.name}-{dataset.source}-preview.png")
    imsave(out, sheet[..., 0].numpy() if channels == 1 else sheet.numpy(),
           cmap="gray", vmin=0, vmax=255)
    print(f"{out}: rows {list(dataset.factor_names)}, {PREVIEW_COLUMNS} steps each "
          f"(source {dataset.source})")
    return 0


def add_commands(subparsers) -> None:
    data = subparsers.add_parser("data", help="ground-truth datasets: list, inspect, prepare")
    commands = data.add_subparsers(dest="data_command", required=True)

    def command(name: str, handler, help_text: str, needs_name: bool = True):
        parser = commands.add_parser(name, help=help_text)
        if needs_name:
            parser.add_argument("name", help="dataset name (see `dlbench data list`)")
            parser.add_argument("--path", help="the official file itself")
            parser.add_argument("--cache-dir", help="default $DLBENCH_CACHE_DIR or "
                                                    "~/.cache/dlbench")
        parser.add_argument("--data-dir", help="folder of official files "
                                               "(default $DLBENCH_DATA_DIR)")
        parser.set_defaults(handler=handler)
        return parser

    command("list", list_datasets, "built-in datasets and whether their files are found",
            needs_name=False)
    for name, handler, help_text in (
            ("info", info, "factors, sizes, values and source, as JSON"),
            ("preview", preview, "PNG grid, one factor varied per row")):
        parser = command(name, handler, help_text)
        parser.add_argument("--source", default="auto", choices=("auto", "official",
                                                                 "procedural"))
        if name == "preview":
            parser.add_argument("--out", help="PNG file (default NAME-SOURCE-preview.png)")
            parser.add_argument("--seed", type=int, default=0)
    command("prepare", prepare, "verify the official file and build its cache")
    command("verify", verify, "recompute the file's checksum and the cache's")
