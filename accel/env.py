"""The hardware configuration, read once and shared by compiler, runtime and simulator.

``get_env()`` finds the configuration file (``$ACCEL_CONFIG``, else ``./vta_config.json``, else
the packaged default), checks every key and derives the parameters the rest of accel uses:
GEMM core shape, element sizes, SRAM depths, dtypes, scope and pragma names, and the cycle-model
parameters. ``using_env(...)`` switches to another configuration inside a ``with`` block.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accel.errors import ConfigError

PACKAGED_CONFIG = Path(__file__).with_name("vta_config.json")

# Keys every configuration must give, with the range each value may take.
REQUIRED_INT_KEYS: dict[str, tuple[int, int]] = {
    "LOG_INP_WIDTH": (0, 5),
    "LOG_WGT_WIDTH": (0, 5),
    "LOG_ACC_WIDTH": (3, 5),
    "LOG_BATCH": (0, 4),
    "LOG_BLOCK": (0, 6),
    "LOG_UOP_BUFF_SIZE": (4, 24),
    "LOG_INP_BUFF_SIZE": (4, 24),
    "LOG_WGT_BUFF_SIZE": (4, 24),
    "LOG_ACC_BUFF_SIZE": (4, 24),
}

# Cycle-model keys: optional, with documented defaults (see docs/cycle_model.md).
TIMING_DEFAULTS: dict[str, int] = {
    "CLOCK_MHZ": 100,  # the classic pynq / de10nano clock
    "DRAM_BUS_BYTES": 8,  # 64-bit memory bus: bytes moved per cycle once a burst streams
    "DRAM_LATENCY_CYCLES": 32,  # cycles before the first beat of a DRAM burst arrives
    "GEMM_PIPELINE_DEPTH": 4,  # fill cycles of the GEMM core per instruction
    "ALU_PIPELINE_DEPTH": 4,  # fill cycles of the vector ALU per instruction
    "ALU_CYCLES_PER_VECTOR": 2,  # the ALU handles one BATCH x BLOCK_OUT vector every 2 cycles
    "INSTRUCTION_OVERHEAD_CYCLES": 1,  # decode and dispatch of one instruction
}

SUPPORTED_TARGETS = ("sim",)
SUPPORTED_HW_VERSIONS = ("0.0.2",)


@dataclass(frozen=True)
class Environment:
    """One accelerator configuration and every parameter derived from it.

    Build it with :func:`get_env` or :meth:`Environment.from_dict`; the attributes follow the
    names of the classic VTA tutorials (``BATCH``, ``BLOCK_IN``, ``inp_scope``, ...).
    """

    cfg: Mapping[str, Any] = field(repr=False)

    # -- raw configuration -------------------------------------------------------------------
    @property
    def TARGET(self) -> str:
        return self.cfg["TARGET"]

    @property
    def HW_VER(self) -> str:
        return self.cfg["HW_VER"]

    def __getattr__(self, name: str) -> Any:
        cfg = object.__getattribute__(self, "cfg")
        if name in cfg:
            return cfg[name]
        raise AttributeError(f"Environment has no attribute {name!r}")

    # -- widths and the GEMM core shape ------------------------------------------------------
    @property
    def INP_WIDTH(self) -> int:
        return 1 << self.cfg["LOG_INP_WIDTH"]

    @property
    def WGT_WIDTH(self) -> int:
        return 1 << self.cfg["LOG_WGT_WIDTH"]

    @property
    def ACC_WIDTH(self) -> int:
        return 1 << self.cfg["LOG_ACC_WIDTH"]

    @property
    def OUT_WIDTH(self) -> int:
        return self.INP_WIDTH

    @property
    def BATCH(self) -> int:
        return 1 << self.cfg["LOG_BATCH"]

    @property
    def BLOCK_IN(self) -> int:
        return 1 << self.cfg["LOG_BLOCK"]

    @property
    def BLOCK_OUT(self) -> int:
        return 1 << self.cfg["LOG_BLOCK"]

    # -- element ("tile") sizes in bytes -----------------------------------------------------
    @property
    def INP_ELEM_BYTES(self) -> int:
        return self.BATCH * self.BLOCK_IN * self.INP_WIDTH // 8

    @property
    def WGT_ELEM_BYTES(self) -> int:
        return self.BLOCK_OUT * self.BLOCK_IN * self.WGT_WIDTH // 8

    @property
    def ACC_ELEM_BYTES(self) -> int:
        return self.BATCH * self.BLOCK_OUT * self.ACC_WIDTH // 8

    @property
    def OUT_ELEM_BYTES(self) -> int:
        return self.BATCH * self.BLOCK_OUT * self.OUT_WIDTH // 8

    UOP_ELEM_BYTES = 4

    # -- SRAM sizes (bytes) and depths (elements) --------------------------------------------
    @property
    def UOP_BUFF_SIZE(self) -> int:
        return 1 << self.cfg["LOG_UOP_BUFF_SIZE"]

    @property
    def INP_BUFF_SIZE(self) -> int:
        return 1 << self.cfg["LOG_INP_BUFF_SIZE"]

    @property
    def WGT_BUFF_SIZE(self) -> int:
        return 1 << self.cfg["LOG_WGT_BUFF_SIZE"]

    @property
    def ACC_BUFF_SIZE(self) -> int:
        return 1 << self.cfg["LOG_ACC_BUFF_SIZE"]

    @property
    def OUT_BUFF_SIZE(self) -> int:
        return self.ACC_BUFF_SIZE * self.OUT_WIDTH // self.ACC_WIDTH

    @property
    def UOP_BUFF_DEPTH(self) -> int:
        return self.UOP_BUFF_SIZE // self.UOP_ELEM_BYTES

    @property
    def INP_BUFF_DEPTH(self) -> int:
        return self.INP_BUFF_SIZE // self.INP_ELEM_BYTES

    @property
    def WGT_BUFF_DEPTH(self) -> int:
        return self.WGT_BUFF_SIZE // self.WGT_ELEM_BYTES

    @property
    def ACC_BUFF_DEPTH(self) -> int:
        return self.ACC_BUFF_SIZE // self.ACC_ELEM_BYTES

    @property
    def OUT_BUFF_DEPTH(self) -> int:
        return self.OUT_BUFF_SIZE // self.OUT_ELEM_BYTES

    @property
    def LOG_UOP_BUFF_DEPTH(self) -> int:
        return _log2(self.UOP_BUFF_DEPTH)

    @property
    def LOG_INP_BUFF_DEPTH(self) -> int:
        return _log2(self.INP_BUFF_DEPTH)

    @property
    def LOG_WGT_BUFF_DEPTH(self) -> int:
        return _log2(self.WGT_BUFF_DEPTH)

    @property
    def LOG_ACC_BUFF_DEPTH(self) -> int:
        return _log2(self.ACC_BUFF_DEPTH)

    # -- dtypes, scopes, pragmas -------------------------------------------------------------
    @property
    def inp_dtype(self) -> str:
        return f"int{self.INP_WIDTH}"

    @property
    def wgt_dtype(self) -> str:
        return f"int{self.WGT_WIDTH}"

    @property
    def acc_dtype(self) -> str:
        return f"int{self.ACC_WIDTH}"

    @property
    def out_dtype(self) -> str:
        return f"int{self.OUT_WIDTH}"

    inp_scope = "local.inp_buffer"
    wgt_scope = "local.wgt_buffer"
    acc_scope = "local.acc_buffer"
    dma_copy = "dma_copy"
    alu = "alu"

    @property
    def scopes(self) -> tuple[str, str, str]:
        """The three on-chip scopes, input / weight / accumulator."""
        return (self.inp_scope, self.wgt_scope, self.acc_scope)

    @property
    def gemm(self):
        """The GEMM tensor intrinsic for this configuration (for ``Stage.tensorize``)."""
        return intrinsic("gemm", self)

    # -- naming ------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """Short configuration name, e.g. ``sim_1x16_i8w8a32_15_15_18_17``."""
        c = self.cfg
        return (
            f"{self.TARGET}_{self.BATCH}x{self.BLOCK_IN}_i{self.INP_WIDTH}w{self.WGT_WIDTH}"
            f"a{self.ACC_WIDTH}_{c['LOG_UOP_BUFF_SIZE']}_{c['LOG_INP_BUFF_SIZE']}"
            f"_{c['LOG_WGT_BUFF_SIZE']}_{c['LOG_ACC_BUFF_SIZE']}"
        )

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a plain dict (what ``vta_config.json`` holds)."""
        return dict(self.cfg)

    def save(self, path: str | os.PathLike) -> None:
        """Write the configuration as a ``vta_config.json`` file (``from_file`` reads it)."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any], source: str = "<dict>") -> Environment:
        """Check ``cfg`` and build an environment; raises ``ConfigError`` naming a bad key."""
        return cls(_validate(dict(cfg), source))

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> Environment:
        """Read and check a JSON configuration file."""
        path = Path(path)
        try:
            if path.stat().st_size > MAX_CONFIG_BYTES:
                raise ConfigError(
                    f"configuration {path} is larger than {MAX_CONFIG_BYTES} bytes; a "
                    "configuration is a small JSON object"
                )
            text = path.read_bytes().decode("utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read configuration {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"configuration {path} is not UTF-8 text (a JSON object)") from None
        try:
            cfg = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"configuration {path} is not valid JSON: {exc}") from None
        except RecursionError:
            raise ConfigError(f"configuration {path} is nested too deeply to be one") from None
        if not isinstance(cfg, dict):
            raise ConfigError(f"configuration {path} must hold a JSON object")
        return cls.from_dict(cfg, str(path))

    def __hash__(self) -> int:
        # Environments key every cache (encodings, devices, intrinsics): hash the configuration
        # once, not on every lookup.
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = hash(tuple(sorted(self.cfg.items())))
            object.__setattr__(self, "_hash", cached)
        return cached

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Environment) and dict(self.cfg) == dict(other.cfg)


def _log2(value: int) -> int:
    return value.bit_length() - 1


def _validate(cfg: dict[str, Any], source: str) -> dict[str, Any]:
    known = {"TARGET", "HW_VER", *REQUIRED_INT_KEYS, *TIMING_DEFAULTS}
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown configuration key(s) {', '.join(unknown)}")
    for key in ("TARGET", "HW_VER", *REQUIRED_INT_KEYS):
        if key not in cfg:
            raise ConfigError(f"{source}: missing configuration key {key}")
    if cfg["TARGET"] not in SUPPORTED_TARGETS:
        raise ConfigError(
            f"{source}: TARGET {cfg['TARGET']!r} is not supported (choose from {SUPPORTED_TARGETS})"
        )
    if cfg["HW_VER"] not in SUPPORTED_HW_VERSIONS:
        raise ConfigError(f"{source}: HW_VER {cfg['HW_VER']!r} is not supported")
    for key, (low, high) in REQUIRED_INT_KEYS.items():
        _check_int(cfg, key, low, high, source)
    for key, default in TIMING_DEFAULTS.items():
        cfg.setdefault(key, default)
        _check_int(
            cfg, key, 0 if key.endswith("DEPTH") or "OVERHEAD" in key else 1, 1 << 20, source
        )
    env = Environment(cfg)
    for buf in ("INP", "WGT", "ACC"):
        if getattr(env, f"{buf}_BUFF_DEPTH") < 1:
            raise ConfigError(
                f"{source}: LOG_{buf}_BUFF_SIZE={cfg[f'LOG_{buf}_BUFF_SIZE']} is smaller than one "
                f"{buf.lower()} element ({getattr(env, f'{buf}_ELEM_BYTES')} bytes)"
            )
    if env.INP_ELEM_BYTES * 8 != env.BATCH * env.BLOCK_IN * env.INP_WIDTH:
        raise ConfigError(f"{source}: an input element must be a whole number of bytes")
    for check in _CHECKS:
        check(env, source)
    return cfg


# Checks that layers above the configuration add (the instruction set checks that every field
# of a configuration can be encoded), so that a configuration is refused when it is loaded, not
# when its first program is built.
_CHECKS: list[Callable[[Environment, str], None]] = []


def register_check(check: Callable[[Environment, str], None]) -> None:
    """Run ``check(env, source)`` on every configuration loaded; it raises ConfigError."""
    _CHECKS.append(check)


def _check_int(cfg: dict[str, Any], key: str, low: int, high: int, source: str) -> None:
    value = cfg[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{source}: {key} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{source}: {key}={value} is outside [{low}, {high}]")


# Tensor intrinsics are declared by the lowering layer, which knows how to emit them; the
# configuration only names them (``env.gemm``), so it asks a registry instead of importing up.
_INTRINSICS: dict[str, Callable[[Environment], Any]] = {}


def register_intrinsic(name: str, factory: Callable[[Environment], Any]) -> None:
    """Make ``factory(env)`` the intrinsic ``env.<name>`` returns (done by ``accel.lower``)."""
    _INTRINSICS[name] = factory


def intrinsic(name: str, env: Environment) -> Any:
    """The intrinsic ``name`` of ``env``; raises ConfigError when no layer declared it."""
    factory = _INTRINSICS.get(name)
    if factory is None:
        raise ConfigError(f"no tensor intrinsic {name!r} is declared; import accel to declare it")
    return factory(env)


MAX_CONFIG_BYTES = 1 << 16
_ENV_STACK: list[Environment] = []
_FILE_CACHE: dict[tuple[str, float], Environment] = {}


def config_path() -> Path:
    """The file ``get_env`` reads: $ACCEL_CONFIG, ./vta_config.json, or the packaged default."""
    override = os.environ.get("ACCEL_CONFIG")
    if override:
        return Path(override)
    local = Path.cwd() / "vta_config.json"
    return local if local.is_file() else PACKAGED_CONFIG


def get_env() -> Environment:
    """The current environment: the innermost ``using_env`` block, else the configuration file."""
    if _ENV_STACK:
        return _ENV_STACK[-1]
    path = config_path()
    try:
        key = (str(path.resolve()), path.stat().st_mtime)
    except OSError:
        raise ConfigError(f"configuration file {path} does not exist") from None
    env = _FILE_CACHE.get(key)
    if env is None:
        env = _FILE_CACHE[key] = Environment.from_file(path)
    return env


@contextlib.contextmanager
def using_env(config: Environment | Mapping[str, Any] | str | os.PathLike) -> Iterator[Environment]:
    """Use another configuration inside a ``with`` block.

    ``config`` is an ``Environment``, a path to a JSON file, or a dict of keys that override
    the packaged default (``using_env({"LOG_BLOCK": 3})``).
    """
    if isinstance(config, Environment):
        env = config
    elif isinstance(config, Mapping):
        base = json.loads(PACKAGED_CONFIG.read_text())
        base.update(config)
        env = Environment.from_dict(base, "using_env(...)")
    elif isinstance(config, (str, os.PathLike)):
        env = Environment.from_file(config)
    else:
        raise ConfigError(
            f"using_env takes an Environment, a dict of keys or a path to a JSON file, not "
            f"{type(config).__name__}"
        )
    _ENV_STACK.append(env)
    try:
        yield env
    finally:
        _ENV_STACK.pop()


# Configuration presets (``accel env --presets``): each overrides keys of the packaged default.
# The original VTA's sample configurations (pynq, de10nano, ultra96, zcu104, intelfocl) all have
# the 1x16x16 core and 32 KB / 256 KB / 128 KB SRAMs; they differ in clock and AXI bus width
# (the original's config/pkg_config.py: 100 MHz and 64 bits for pynq and de10nano, 333 MHz and
# 128 bits for ultra96 and zcu104). The others are design points around them: a wider core,
# other SRAM splits, batch 2, a smaller core.
PRESETS: dict[str, tuple[str, dict[str, int]]] = {
    "default": ("1x16x16, SRAMs 32/256/128 KB, 100 MHz, 64-bit bus (pynq, de10nano)", {}),
    "ultra96": (
        "the same core at 333 MHz on a 128-bit bus (ultra96, zcu104)",
        {"CLOCK_MHZ": 333, "DRAM_BUS_BYTES": 16},
    ),
    "1x16_big_wgt": (
        "1x16x16 with a 512 KB weight SRAM and a 64 KB accumulator SRAM (a GEMM instruction's "
        "128 bits cap the sum of the SRAM index widths, which the default uses up)",
        {"LOG_WGT_BUFF_SIZE": 19, "LOG_ACC_BUFF_SIZE": 16},
    ),
    "1x16_big_inp": (
        "1x16x16 with a 64 KB input SRAM and a 64 KB accumulator SRAM",
        {"LOG_INP_BUFF_SIZE": 16, "LOG_ACC_BUFF_SIZE": 16},
    ),
    "1x32": (
        "1x32x32 (the original's intelfocl 32x32 GEMM version), the same SRAM depths "
        "(64 KB / 1 MB / 256 KB)",
        {"LOG_BLOCK": 5, "LOG_INP_BUFF_SIZE": 16, "LOG_WGT_BUFF_SIZE": 20, "LOG_ACC_BUFF_SIZE": 18},
    ),
    "2x16": (
        "batch 2: 2x16x16 for batched inference, the same SRAM depths",
        {"LOG_BATCH": 1, "LOG_INP_BUFF_SIZE": 16, "LOG_ACC_BUFF_SIZE": 18},
    ),
    "1x8_small": (
        "1x8x8 with small SRAMs (8/32/32 KB) for small FPGAs and quick experiments",
        {"LOG_BLOCK": 3, "LOG_INP_BUFF_SIZE": 13, "LOG_WGT_BUFF_SIZE": 15, "LOG_ACC_BUFF_SIZE": 15},
    ),
}


def preset(name: str) -> Environment:
    """The configuration preset ``name`` (see :data:`PRESETS`); ConfigError for an unknown one."""
    if name not in PRESETS:
        raise ConfigError(f"unknown configuration preset {name!r}; known: {', '.join(PRESETS)}")
    base = json.loads(PACKAGED_CONFIG.read_text())
    return Environment.from_dict({**base, **PRESETS[name][1]}, f"preset {name}")
