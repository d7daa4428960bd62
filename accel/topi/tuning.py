"""The tuning hook: how ``default_*tiles`` ask for tuned tiles without knowing the tuner.

``accel.tune`` sits above ``topi``, so ``topi`` cannot import it. Instead this module keeps a
small registry that the tuner fills, in the manner of AutoTVM's dispatch contexts:

- :func:`workload` describes an operator declaration by what its schedule depends on (shapes,
  stride, groups, epilogue stages), as plain JSON data; :func:`workload_key` makes it a key.
- :func:`config_id` names a hardware configuration exactly (its name and a digest of every key,
  timing keys included, since the best tiles depend on them).
- :func:`dispatch` installs, inside a ``with`` block, a lookup ``(workload, env, op) -> tiles``;
  ``accel.tune.apply_history_best(log)`` is built on it. Innermost lookups answer first; a lookup
  returns the tiles as a dict of the tiles dataclass's fields, None to pass the question on, or
  :data:`RULE` to make the hand-written rule answer.
- Without an answer from a lookup, the tables shipped in ``accel/topi/tuned/*.json`` answer (see
  :func:`dump_table`; ``accel.tune.export_table`` writes them from a tuning log), then the rule.

:func:`tuned_tiles` is what each ``default_*tiles`` calls first. It answers only when the caller
asked for the rule's default thread counts (an explicit other request keeps the rule), and
returns an instance of the rule's return type.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import typing
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from accel.env import Environment
from accel.errors import ConfigError

TABLE_FORMAT = "accel-tuned-tiles/1"
TABLE_DIR = Path(__file__).with_name("tuned")
RULE = "rule"  # a lookup's answer meaning: use the hand-written rule

Lookup = Callable[[dict, Environment, Any], "dict | str | None"]
_LOOKUPS: list[Lookup] = []
_SHIPPED: dict[tuple[str, str], dict] | None = None
_DEFAULTS: dict[Callable, tuple[dict, type]] = {}


def workload(op: Any) -> dict:
    """What the schedule of ``op`` (a topi declaration: ``Conv2d``, ``Dense``, ``VectorOp``)
    depends on, as JSON data: its kind, the shapes and dtypes of its arguments (and of a
    padded input copy), its stride, groups or pooling window, and the names of its epilogue or
    ALU stages."""
    described: dict[str, Any] = {
        "op": type(op).__name__,
        "args": [[list(map(int, t.shape)), t.dtype] for t in op.args],
        "stages": [t.op.name for t in (op.epilogue if hasattr(op, "epilogue") else op.stages)],
    }
    for name in ("stride", "groups", "window"):
        value = getattr(op, name, None)
        if value is not None:
            described[name] = list(value) if isinstance(value, tuple) else value
    padded = getattr(op, "data_buf", None)
    if padded is not None:
        described["padded"] = list(map(int, padded.shape))
    return described


def workload_key(described: Mapping) -> str:
    """The canonical text of a workload (sorted keys, no spaces): equal workloads, equal keys."""
    return json.dumps(described, sort_keys=True, separators=(",", ":"))


def config_id(env: Environment) -> str:
    """``env.name`` and a digest of every configuration key: two configurations that differ in
    any key (a timing key included) get different ids."""
    digest = hashlib.sha1(workload_key(env.to_dict()).encode()).hexdigest()[:10]
    return f"{env.name}-{digest}"


@contextlib.contextmanager
def dispatch(lookup: Lookup) -> Iterator[None]:
    """Inside the block, ``default_*tiles`` ask ``lookup(workload, env, op)`` first (innermost
    block first); it returns a dict of tiles fields, None (no answer) or :data:`RULE`."""
    _LOOKUPS.append(lookup)
    try:
        yield
    finally:
        _LOOKUPS.remove(lookup)


def tuned_tiles(rule: Callable, op: Any, env: Environment, **requested: Any) -> Any:
    """The tuned tiles of ``op`` on ``env`` for the default rule ``rule`` (which calls this
    first with its thread arguments as ``requested``), or None to let the rule answer.

    Only a request for the rule's default thread counts is answered. Tiles that are not fields
    of the rule's tiles dataclass raise ConfigError naming the workload."""
    defaults, tiles_class = _rule_info(rule)
    if any(defaults.get(name) != value for name, value in requested.items()):
        return None
    described = workload(op)
    answer = None
    for lookup in reversed(_LOOKUPS):
        answer = lookup(described, env, op)
        if answer is not None:
            break
    if answer is None:
        answer = shipped_tables().get((config_id(env), workload_key(described)))
    if answer is None or answer == RULE:
        return None
    try:
        return tiles_class(**answer)
    except TypeError as exc:
        raise ConfigError(
            f"tuned tiles {answer} for {workload_key(described)} are not {tiles_class.__name__}: "
            f"{exc}"
        ) from None


def _rule_info(rule: Callable) -> tuple[dict, type]:
    info = _DEFAULTS.get(rule)
    if info is None:
        params = inspect.signature(rule).parameters
        defaults = {n: p.default for n, p in params.items() if p.default is not p.empty}
        info = _DEFAULTS[rule] = (defaults, typing.get_type_hints(rule)["return"])
    return info


def dump_table(entries: list[dict], path: str | Path) -> None:
    """Write a table of tuned tiles: ``entries`` are dicts with ``config`` (a
    :func:`config_id`), ``workload`` (a :func:`workload`), ``tiles`` (field dict) and any
    figures worth keeping beside them (``cycles``, ...)."""
    lines = ",\n".join(" " + json.dumps(e, sort_keys=True, separators=(",", ":")) for e in entries)
    Path(path).write_text(f'{{"format": "{TABLE_FORMAT}", "entries": [\n{lines}\n]}}\n')


def load_table(path: str | Path) -> dict[tuple[str, str], dict]:
    """Read a table written by :func:`dump_table`: ``{(config id, workload key): tiles}``.
    Raises ConfigError naming the file and the entry when it is malformed."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"tuned-tiles table {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != TABLE_FORMAT:
        raise ConfigError(f"tuned-tiles table {path}: not in format {TABLE_FORMAT}")
    table = {}
    for i, entry in enumerate(data.get("entries", [])):
        try:
            tiles = {str(k): int(v) for k, v in entry["tiles"].items()}
            table[str(entry["config"]), workload_key(entry["workload"])] = tiles
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"tuned-tiles table {path}: entry {i} is malformed ({exc})") from None
    return table


def shipped_tables() -> dict[tuple[str, str], dict]:
    """The tables shipped in ``accel/topi/tuned/``, read once."""
    global _SHIPPED
    if _SHIPPED is None:
        merged: dict[tuple[str, str], dict] = {}
        for path in sorted(TABLE_DIR.glob("*.json")):
            merged.update(load_table(path))
        _SHIPPED = merged
    return _SHIPPED
