"""`dlbench data list | info NAME | prepare NAME [--path FILE] | verify NAME | preview NAME`.

Every registered dataset is listed and previewed, a third party's included; `prepare` and `verify`
work for any dataset whose factory declares its published files (`official_files`). Heavy imports
happen inside the handlers, so adding these commands to the parser costs nothing.
"""
from __future__ import annotations

import json
from pathlib import Path

from dlbench.errors import ConfigError, DataError

PREVIEW_COLUMNS = 8
PREVIEW_SUFFIXES = (".png", ".jpg", ".jpeg", ".pdf", ".svg")


def _registration(name: str):
    from dlbench.plugins import get_plugins

    return get_plugins().datasets.get(name)


def _official_files(name: str):
    official = getattr(_registration(name).provided, "official_files", None)
    if official is None:
        raise ConfigError(f"dataset {name!r} declares no published files (it is generated, or its plugin does not "
                          "say); prepare and verify apply to datasets with official files")
    return official


def _file_options(args) -> dict:
    """The file options the user gave; a dataset without files only gets them when they were asked for."""
    return {key: value for key, value in (("data_dir", args.data_dir), ("cache_dir", getattr(args, "cache_dir", None)),
                                          ("path", getattr(args, "path", None))) if value is not None}


def _build(args, source: str):
    from dlbench.plugins import create_dataset

    return create_dataset(args.name, source=source, **_file_options(args))


def _data_dir(args) -> Path | None:
    from dlbench.datasets import files

    folder = files.resolve_data_dir(args.data_dir)
    if folder is not None and not folder.is_dir():
        source = "--data-dir" if args.data_dir is not None else f"${files.DATA_DIR_ENV}"
        raise ConfigError(f"{source} {str(folder)!r} is not an existing directory; give the folder that holds the "
                          "published files")
    return folder


def _official_file(args) -> Path:
    from dlbench.datasets import files

    names = _official_files(args.name).names
    folder = _data_dir(args)
    found = files.find_file(args.path, folder, names)
    if found is None:
        raise DataError(f"{args.name}: none of {list(names)} in the data directory {folder}; set "
                        "DLBENCH_DATA_DIR, --data-dir or --path")
    return found


def list_datasets(args) -> int:
    from dlbench.datasets import files
    from dlbench.plugins import get_plugins
    from dlbench.summary import format_table

    folder = _data_dir(args)
    rows = []
    for registration in get_plugins().datasets.entries():
        official = getattr(registration.provided, "official_files", None)
        if official is None:
            status = "no published files"
        else:
            found = files.find_file(None, folder, official.names)
            status = str(found) if found else f"not found ({' or '.join(official.names)})"
        rows.append([registration.name, registration.plugin, status, registration.doc])
    print(f"data directory: {folder or 'not set (' + files.DATA_DIR_ENV + ' or --data-dir)'}")
    print(format_table(["dataset", "plugin", "official file", "description"], rows))
    return 0


def info(args) -> int:
    print(json.dumps(_build(args, args.source).describe(), indent=1))
    return 0


def prepare(args) -> int:
    _official_file(args)  # names what is missing before the dataset tries
    dataset = _build(args, "official")
    facts = dataset.describe()
    print(f"{args.name}: ready from {facts.get('file')} ({len(dataset)} observations; "
          f"cache {facts.get('cache', 'none: memory-mapped in place')})")
    return 0


def verify(args) -> int:
    from dlbench.datasets import files

    path = _official_file(args)
    official = _official_files(args.name)
    stamp = files.verify_source(path, official.checks.get(path.name), strict=official.strict,
                                cache_dir=files.resolve_cache_dir(args.cache_dir), force=True)
    reference = "matches the published reference" if stamp["matches_reference"] and stamp["expected"] \
        else "no published checksum to compare" if not stamp["expected"] \
        else "DOES NOT match the published reference"
    print(f"{path}: {stamp['bytes']} bytes, {stamp['algorithm']} {stamp['digest']} ({reference})")
    cache = _build(args, "official").describe().get("cache")
    if cache:
        print(f"{cache}: sha256 {files.verify_cache(Path(cache))} (as written)")
    return 0


def preview(args) -> int:
    """A PNG grid: one row per factor, that factor stepped across its classes, the others held
    at one seeded random draw."""
    import torch
    from matplotlib.image import imsave  # only the preview needs matplotlib

    from dlbench.atomic import atomic_write
    from dlbench.config import check_seed
    from dlbench.interfaces import DiscreteGroundTruthDataset

    out = Path(args.out or f"{args.name}-{args.source}-preview.png")
    if out.suffix.lower() not in PREVIEW_SUFFIXES:
        raise ConfigError(f"--out {str(out)!r} is not accepted; expected an image file name ending in "
                          f"{', '.join(PREVIEW_SUFFIXES)}")
    if out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a directory; expected an image file name")
    check_seed("--seed", args.seed)
    dataset = _build(args, args.source)
    if not isinstance(dataset, DiscreteGroundTruthDataset):
        raise ConfigError(f"dataset {args.name!r} has no discrete factor grid to step through; preview shows "
                          "discrete datasets")
    base = dataset.sample_factors(1, torch.Generator(device=dataset.device).manual_seed(args.seed))
    rows = []
    for k, size in enumerate(dataset.factor_sizes):
        factors = base.repeat(PREVIEW_COLUMNS, 1)
        factors[:, k] = torch.linspace(0, size - 1, PREVIEW_COLUMNS).round().long()
        rows.append(dataset.observations_from_factors(factors))
    images = torch.stack(rows).cpu()  # (factors, columns, C, H, W)
    num_rows, num_columns, channels, height, width = images.shape
    sheet = images.permute(0, 3, 1, 4, 2).reshape(num_rows * height, num_columns * width, channels)
    pixels = sheet[..., 0].numpy() if channels == 1 else sheet.numpy()
    atomic_write(out, lambda stream: imsave(stream, pixels, cmap="gray", vmin=0, vmax=255,
                                            format=out.suffix.lstrip(".").lower()))
    print(f"{out}: rows {list(dataset.factor_names)}, {PREVIEW_COLUMNS} steps each (source {dataset.source})")
    return 0


def add_commands(subparsers) -> None:
    data = subparsers.add_parser("data", help="ground-truth datasets: list, inspect, prepare")
    commands = data.add_subparsers(dest="data_command", required=True)

    def command(name: str, handler, help_text: str, needs_name: bool = True):
        parser = commands.add_parser(name, help=help_text)
        if needs_name:
            parser.add_argument("name", help="dataset name (see `dlbench data list`)")
            parser.add_argument("--path", help="the official file itself")
            parser.add_argument("--cache-dir", help="default $DLBENCH_CACHE_DIR or ~/.cache/dlbench")
        parser.add_argument("--data-dir", help="folder of official files (default $DLBENCH_DATA_DIR)")
        parser.set_defaults(handler=handler)
        return parser

    command("list", list_datasets, "registered datasets and whether their published files are found",
            needs_name=False)
    for name, handler, help_text in (("info", info, "factors, sizes, values and source, as JSON"),
                                     ("preview", preview, "PNG grid, one factor varied per row")):
        parser = command(name, handler, help_text)
        parser.add_argument("--source", default="auto", choices=("auto", "official", "procedural", "synthetic"))
        if name == "preview":
            parser.add_argument("--out", help="image file (default NAME-SOURCE-preview.png)")
            parser.add_argument("--seed", type=int, default=0)
    command("prepare", prepare, "verify the official file and build its cache")
    command("verify", verify, "recompute the file's checksum and the cache's")
