"""Program files: a built :class:`~accel.graph.program.Program` saved as data, never as code.

A program file is a zip archive:

- ``manifest.json``: the format and version, the hardware configuration, the quantized graph
  (``accel.graph.graph_file``) and the steps (name, kind, where they run, their nodes, the
  module file of an accelerator step and its tiles);
- ``constants/<i>.npy``: the graph's constants, read with ``allow_pickle=False``;
- ``modules/<i>.json``: each distinct module in the module file format
  (``docs/module_format.md``), from which the host code is generated anew.

Loading checks everything: the archive and its member sizes, the manifest field by field, the
constants' types, the graph (by building it), that packing the graph for the configuration
gives the steps the manifest lists, every module file, and that each module takes the
arguments its step passes. Nothing in a file is executed.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from typing import Any, NoReturn

import numpy as np

from accel.build import module_from_lowered
from accel.env import Environment
from accel.errors import AccelError, LoadError, SaveError
from accel.graph.graph_file import DTYPES, graph_from_data, graph_to_data
from accel.graph.packing import ACCEL, PackedGraph, pack
from accel.runtime import module_file
from accel.runtime.module import Module
from accel.topi import Conv2dTiles, DenseTiles, VectorTiles

FORMAT = "accel-program"
VERSION = 1
MANIFEST = "manifest.json"
MAX_MEMBER_BYTES = 1 << 30
TILE_TYPES = {cls.__name__: cls for cls in (Conv2dTiles, DenseTiles, VectorTiles)}


def save_program(program, path) -> None:
    """Write ``program`` (an ``accel.graph.Program``) to the zip file ``path``. Raises
    SaveError when it cannot be written."""
    graph_data, constants = graph_to_data(program.graph)
    const_files = {name: f"constants/{i}.npy" for i, name in enumerate(sorted(constants))}
    module_files: dict[int, str] = {}
    texts: dict[str, str] = {}
    steps = []
    for step in program.packed.steps:
        entry = {"name": step.name, "kind": step.kind, "target": step.target}
        entry["nodes"] = list(step.nodes)
        entry["module"] = entry["tiles"] = None
        if step.target == ACCEL:
            module = program.modules[step.name]
            if id(module) not in module_files:
                member = f"modules/{len(module_files)}.json"
                module_files[id(module)] = member
                texts[member] = module_file.dumps(module.lowered, module.env, module.target)
            entry["module"] = module_files[id(module)]
            entry["tiles"] = _tiles_data(program.tiles[step.name])
        steps.append(entry)
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "config": program.env.to_dict(),
        "graph": graph_data,
        "constant_files": const_files,
        "steps": steps,
    }
    try:
        text = json.dumps(manifest, indent=1)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(MANIFEST, text)
            for name, member in const_files.items():
                buffer = io.BytesIO()
                np.save(buffer, constants[name], allow_pickle=False)
                archive.writestr(member, buffer.getvalue())
            for member, module_text in texts.items():
                archive.writestr(member, module_text)
    except (OSError, TypeError, ValueError) as exc:
        raise SaveError(f"cannot write the program to {path}: {exc}") from None


def read_program(path) -> tuple[PackedGraph, dict[str, Module], dict]:
    """The packed graph, modules by step and tiles by step of a program file (what
    ``accel.graph.load_program`` makes a Program of). Raises LoadError naming what is missing,
    malformed or inconsistent."""
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise LoadError(f"no program file {path}") from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise LoadError(f"{path} is not a program file (a zip archive): {exc}") from None
    with archive:
        return _load(archive, str(path))


def _load(archive: zipfile.ZipFile, path: str):
    manifest = _json(_read(archive, MANIFEST, path), f"{path}:{MANIFEST}")
    _keys(manifest, ("format", "version", "config", "graph", "constant_files", "steps"), "")
    if manifest["format"] != FORMAT:
        _fail("format", f"expected {FORMAT!r}, got {manifest['format']!r}")
    if manifest["version"] != VERSION:
        _fail("version", f"this accel reads version {VERSION}, the file is {manifest['version']!r}")
    try:
        env = Environment.from_dict(manifest["config"], f"{path}:config")
    except (AccelError, TypeError, ValueError, AttributeError) as exc:
        _fail("config", str(exc))
    files = manifest["constant_files"]
    if not isinstance(files, dict):
        _fail("constant_files", "expected an object")
    constants = {name: _array(archive, member, path, name) for name, member in files.items()}
    graph = graph_from_data(manifest["graph"], constants)
    try:
        packed = pack(graph, env)
    except AccelError as exc:
        _fail("graph", f"cannot be packed for the configuration: {exc}")
    entries = manifest["steps"]
    if not isinstance(entries, list) or len(entries) != len(packed.steps):
        _fail("steps", f"expected the {len(packed.steps)} steps packing the graph gives")
    modules, tiles, loaded = {}, {}, {}
    for i, (entry, step) in enumerate(zip(entries, packed.steps)):
        where = f"steps[{i}]"
        _keys(entry, ("name", "kind", "target", "nodes", "module", "tiles"), where)
        listed = (entry["name"], entry["kind"], entry["target"], entry["nodes"])
        if listed != (step.name, step.kind, step.target, list(step.nodes)):
            _fail(
                where,
                f"lists {entry['kind']} step {entry['name']!r} on {entry['target']}, but this "
                f"accel packs {step.kind} step {step.name!r} on {step.target} there",
            )
        if step.target != ACCEL:
            continue
        member = entry["module"]
        if not isinstance(member, str):
            _fail(f"{where}.module", "expected a member name")
        if member not in loaded:
            loaded[member] = _module(archive, member, path, env)
        module = loaded[member]
        want = [(a.shape, a.dtype) for a in step.args]
        got = [(tuple(b.shape), b.dtype) for b in module.params]
        if got != want:
            _fail(f"{where}.module", f"{member} takes {got}, the step passes {want}")
        modules[step.name] = module
        tiles[step.name] = _tiles(entry["tiles"], f"{where}.tiles")
    return packed, modules, tiles


def _read(archive: zipfile.ZipFile, member: str, path: str) -> bytes:
    try:
        info = archive.getinfo(member)
    except KeyError:
        raise LoadError(f"program file {path} has no {member}") from None
    if info.file_size > MAX_MEMBER_BYTES:
        raise LoadError(f"program file {path}: {member} is larger than {MAX_MEMBER_BYTES} bytes")
    try:
        return archive.read(member)
    except (OSError, zipfile.BadZipFile, RuntimeError) as exc:
        raise LoadError(f"program file {path}: cannot read {member}: {exc}") from None


def _json(data: bytes, where: str) -> Any:
    def pairs(items):
        keys = [k for k, _ in items]
        if len(keys) != len(set(keys)):
            raise ValueError(f"duplicate keys in {keys}")
        return dict(items)

    try:
        return json.loads(data.decode("utf-8"), object_pairs_hook=pairs)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise LoadError(f"{where} is not valid JSON: {exc}") from None


def _array(archive: zipfile.ZipFile, member: Any, path: str, name: str) -> np.ndarray:
    if not isinstance(member, str):
        _fail(f"constant_files[{name!r}]", "expected a member name")
    try:
        value = np.load(io.BytesIO(_read(archive, member, path)), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise LoadError(f"program file {path}: {member} is not a .npy array: {exc}") from None
    if not isinstance(value, np.ndarray) or value.dtype.name not in DTYPES:
        _fail(f"constant_files[{name!r}]", f"{member} has an unsupported type")
    return value


def _module(archive: zipfile.ZipFile, member: str, path: str, env: Environment):
    try:
        text = _read(archive, member, path).decode("utf-8")
        lowered, config, target, _extra = module_file.loads(text)
    except UnicodeDecodeError as exc:
        raise LoadError(f"program file {path}: {member} is not text: {exc}") from None
    except AccelError as exc:
        raise LoadError(f"program file {path}: {member}: {exc}") from None
    if target != "accel" or Environment.from_dict(config, member) != env:
        _fail(member, "is not an accelerator module of the program's configuration")
    return module_from_lowered(lowered, env, target, prepare=True)


def _tiles_data(tiles) -> dict:
    return {"type": type(tiles).__name__, **dataclasses.asdict(tiles)}


def _tiles(data: Any, where: str):
    if not isinstance(data, dict) or data.get("type") not in TILE_TYPES:
        _fail(where, f"expected tiles of a type among {', '.join(TILE_TYPES)}")
    cls = TILE_TYPES[data["type"]]
    names = [f.name for f in dataclasses.fields(cls)]
    values = {k: v for k, v in data.items() if k != "type"}
    if set(values) != set(names) or any(type(v) is not int or v < 1 for v in values.values()):
        _fail(where, f"{cls.__name__} needs positive integers {', '.join(names)}")
    return cls(**values)


def _keys(data: Any, expected: tuple[str, ...], where: str) -> None:
    if not isinstance(data, dict):
        _fail(where or "top level", f"expected an object, got {type(data).__name__}")
    if set(data) != set(expected):
        _fail(
            where or "top level",
            f"expected the keys {', '.join(expected)}, got {', '.join(sorted(map(str, data)))}",
        )


def _fail(where: str, message: str) -> NoReturn:
    raise LoadError(f"program file: {where}: {message}")
