"""Energy and area of a run and of a configuration, from per-action energies and per-component
areas (in the manner of Accelergy: action counts x energy per action, plus leakage x time).

The action counts come exactly from the instruction stream (``accel/tune/measure.py``). The
energies and areas come from the table below, at 45 nm and 0.9 V, with their public sources;
:class:`EnergyModel` scales them to another technology node and supply voltage and turns
cycles into time with the clock. Everything is a first-order estimate for comparing design
points, not a sign-off figure; docs/tuning.md states each assumption.

Sources:

- [H14] M. Horowitz, "Computing's Energy Problem (and what we can do about it)", ISSCC 2014,
  45 nm, 0.9 V: 8-bit add 0.03 pJ, 32-bit add 0.1 pJ, 8-bit multiply 0.2 pJ, 32-bit multiply
  3.1 pJ; a 64-bit SRAM read 10 pJ (8 KB), 20 pJ (32 KB), 100 pJ (1 MB); a 64-bit DRAM access
  1.3-2.6 nJ (the low end is used); areas 36 um^2 (8-bit add), 137 um^2 (32-bit add),
  282 um^2 (8-bit multiply), 3495 um^2 (32-bit multiply).
- [M07] K. Mistry et al., "A 45nm Logic Technology with High-k + Metal Gate Transistors ...",
  IEDM 2007: a 0.346 um^2 6-T SRAM cell.
- SRAM energy per bit for other sizes: the power law through [H14]'s three SRAM points
  (least squares in log-log, see :func:`sram_pj_per_bit`), as CACTI-style models grow
  roughly with the square root of the capacity; an SRAM wider than 64 bits counts as banks of
  64-bit words accessed together (:meth:`EnergyModel.sram_access_pj`).
- Assumptions (no single public source; change them as parameters): SRAM array efficiency
  0.5 (cells over total macro area), SRAM leakage 0.1 nW per bit and logic leakage 1 nW per
  um^2 at 45 nm (a low-power process), an ALU lane of three 32-bit adder-class units (add,
  min/max, shift), a MAC of one 8-bit multiply and one 32-bit add.

Scaling to node ``n`` nm at ``V`` volts: dynamic energy x (n / 45) x (V / 0.9)^2 (switched
capacitance proportional to feature size), area x (n / 45)^2, leakage power per unit x (V / 0.9)
(per bit and per um^2 of the *scaled* area). DRAM energy is off-chip and not scaled. For
measured scaling curves use Stillmaker & Baas, "Scaling equations for the accurate prediction
of CMOS device performance from 180 nm to 7 nm", Integration 58 (2017), or hwcomponents.

Optional plug-in: AccelForge's component library ``hwcomponents``
(:func:`hwcomponents_overrides`) replaces the SRAM, MAC and adder energies and areas where it is
installed; it needs Python >= 3.12, so it is unavailable on the 3.11 development machine and the
built-in table is used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from accel.env import Environment
from accel.errors import ConfigError

REFERENCE_NODE_NM = 45.0
REFERENCE_VOLTAGE = 0.9

# [H14], pJ and um^2 at 45 nm, 0.9 V
H14_PJ = {
    "int8_add": 0.03,
    "int32_add": 0.1,
    "int8_mult": 0.2,
    "int32_mult": 3.1,
    "dram_64b": 1300.0,
}
H14_SRAM_64B_READ_PJ = {8 * 1024: 10.0, 32 * 1024: 20.0, 1024 * 1024: 100.0}
H14_AREA_UM2 = {"int8_add": 36.0, "int32_add": 137.0, "int8_mult": 282.0, "int32_mult": 3495.0}
M07_SRAM_CELL_UM2 = 0.346


def _sram_fit() -> tuple[float, float]:
    """(a, b) of pJ per bit = a * bytes^b, least squares through [H14]'s SRAM points."""
    xs = [math.log(size) for size in H14_SRAM_64B_READ_PJ]
    ys = [math.log(pj / 64) for pj in H14_SRAM_64B_READ_PJ.values()]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return math.exp(my - b * mx), b


_SRAM_A, _SRAM_B = _sram_fit()


def sram_pj_per_bit(size_bytes: int) -> float:
    """Access energy per bit of an SRAM of ``size_bytes`` at 45 nm (read or write)."""
    return _SRAM_A * size_bytes**_SRAM_B


@dataclass(frozen=True)
class EnergyModel:
    """Per-action energies and per-component areas for one technology, with the clock.

    Args:
        node_nm: technology node; ``voltage``: supply voltage.
        clock_mhz: clock that turns cycles into time for leakage (default: the
            configuration's ``CLOCK_MHZ``).
        sram_efficiency, sram_leak_nw_per_bit, logic_leak_nw_per_um2: the assumptions above.
        dram_pj_per_byte: off-chip energy per byte (default [H14]'s 1.3 nJ per 64 bits).
        overrides: per-component replacements, e.g. from :func:`hwcomponents_overrides`:
            ``{"mac_pj": ..., "alu_lane_pj": ..., "sram_pj_per_bit": {"inp": ...}, ...}``.
    """

    node_nm: float = REFERENCE_NODE_NM
    voltage: float = REFERENCE_VOLTAGE
    clock_mhz: float | None = None
    sram_efficiency: float = 0.5
    sram_leak_nw_per_bit: float = 0.1
    logic_leak_nw_per_um2: float = 1.0
    dram_pj_per_byte: float = H14_PJ["dram_64b"] / 8
    overrides: dict = field(default_factory=dict)

    # -- scaling ---------------------------------------------------------------------------
    @property
    def energy_scale(self) -> float:
        return (self.node_nm / REFERENCE_NODE_NM) * (self.voltage / REFERENCE_VOLTAGE) ** 2

    @property
    def area_scale(self) -> float:
        return (self.node_nm / REFERENCE_NODE_NM) ** 2

    # -- per action (pJ) ---------------------------------------------------------------------
    def mac_pj(self) -> float:
        base = H14_PJ["int8_mult"] + H14_PJ["int32_add"]
        return self.overrides.get("mac_pj", base * self.energy_scale)

    def alu_lane_pj(self) -> float:
        return self.overrides.get("alu_lane_pj", H14_PJ["int32_add"] * self.energy_scale)

    def sram_access_pj(self, env: Environment, sram: str) -> float:
        """Energy of reading or writing one element of ``sram`` (inp, wgt, acc, uop). A
        ``w``-bit wide SRAM of ``S`` bytes is taken as ``w / 64`` banks of 64-bit words read
        together, each of ``S * 64 / w`` bytes (the way wide on-chip buffers are built)."""
        size, bits = sram_geometry(env)[sram]
        per_bit = self.overrides.get("sram_pj_per_bit", {}).get(sram)
        if per_bit is None:
            bank = size * min(1.0, 64 / bits)
            per_bit = sram_pj_per_bit(bank) * self.energy_scale
        return bits * per_bit

    # -- energy of a run ---------------------------------------------------------------------
    def energy(self, env: Environment, actions: dict, cycles: int) -> dict[str, float]:
        """Energy of a run in pJ, by component: ``dram`` (data), ``insn_fetch``,
        ``sram_<name>`` (reads and writes), ``mac``, ``alu``, ``leakage``, and ``total``."""
        a = actions.get
        dram_bytes = sum(v for k, v in actions.items() if k.startswith("dram_"))
        out = {
            "dram": dram_bytes * self.dram_pj_per_byte,
            "insn_fetch": a("insn_fetch_bytes", 0) * self.dram_pj_per_byte,
        }
        for sram in ("inp", "wgt", "acc", "uop"):
            accesses = a(f"{sram}_read", 0) + a(f"{sram}_write", 0)
            out[f"sram_{sram}"] = accesses * self.sram_access_pj(env, sram)
        out["mac"] = a("macs", 0) * self.mac_pj()
        out["alu"] = a("alu_lane_ops", 0) * self.alu_lane_pj()
        seconds = cycles / (self.clock(env) * 1e6)
        out["leakage"] = self.leakage_mw(env) * 1e-3 * seconds * 1e12
        out["total"] = sum(out.values())
        return out

    def clock(self, env: Environment) -> float:
        return float(self.clock_mhz or env.CLOCK_MHZ)

    # -- area and leakage of a configuration ------------------------------------------------
    def area(self, env: Environment) -> dict[str, float]:
        """Area in mm^2 by component: ``gemm`` (the MAC array), ``alu`` (its lanes), one entry
        per SRAM, and ``total``. Control, fetch and DMA engines are not counted."""
        s = self.area_scale
        macs = env.BATCH * env.BLOCK_IN * env.BLOCK_OUT
        mac_um2 = self.overrides.get(
            "mac_um2", (H14_AREA_UM2["int8_mult"] + H14_AREA_UM2["int32_add"]) * s
        )
        lane_um2 = self.overrides.get("alu_lane_um2", 3 * H14_AREA_UM2["int32_add"] * s)
        out = {"gemm": macs * mac_um2 * 1e-6, "alu": alu_lanes(env) * lane_um2 * 1e-6}
        for sram, (size, _bits) in sram_geometry(env).items():
            cell = self.overrides.get("sram_um2_per_bit", {}).get(sram)
            if cell is None:
                cell = M07_SRAM_CELL_UM2 * s / self.sram_efficiency
            out[f"sram_{sram}"] = size * 8 * cell * 1e-6
        out["total"] = sum(out.values())
        return out

    def leakage_mw(self, env: Environment) -> float:
        """Leakage power in mW: SRAM bits and logic area (see the assumptions above)."""
        v = self.voltage / REFERENCE_VOLTAGE
        bits = sum(size * 8 for size, _bits in sram_geometry(env).values())
        area = self.area(env)
        logic_um2 = (area["gemm"] + area["alu"]) * 1e6
        nw = bits * self.sram_leak_nw_per_bit * v + logic_um2 * self.logic_leak_nw_per_um2 * v
        return nw * 1e-6

    def with_overrides(self, **overrides) -> EnergyModel:
        return replace(self, overrides={**self.overrides, **overrides})


def sram_geometry(env: Environment) -> dict[str, tuple[int, int]]:
    """Per SRAM (inp, wgt, acc, uop): (size in bytes, bits per element)."""
    return {
        "inp": (env.INP_BUFF_SIZE, env.INP_ELEM_BYTES * 8),
        "wgt": (env.WGT_BUFF_SIZE, env.WGT_ELEM_BYTES * 8),
        "acc": (env.ACC_BUFF_SIZE, env.ACC_ELEM_BYTES * 8),
        "uop": (env.UOP_BUFF_SIZE, env.UOP_ELEM_BYTES * 8),
    }


def alu_lanes(env: Environment) -> int:
    """ALU lanes: a ``BATCH x BLOCK_OUT`` vector every ``ALU_CYCLES_PER_VECTOR`` cycles."""
    return max(1, -(-env.BATCH * env.BLOCK_OUT // env.ALU_CYCLES_PER_VECTOR))


def hwcomponents_overrides(env: Environment, node_nm: float = REFERENCE_NODE_NM) -> dict:
    """Energies and areas from AccelForge's component library ``hwcomponents`` (and its
    CACTI plug-in for the SRAMs), as :class:`EnergyModel` overrides.

    Raises ConfigError when hwcomponents is not installed (it needs Python >= 3.12)."""
    try:
        import hwcomponents  # noqa: PLC0415 - optional plug-in
    except ImportError:
        raise ConfigError(
            "hwcomponents is not installed (AccelForge's component library needs Python >= "
            "3.12); the built-in table of accel/tune/energy.py is used instead"
        ) from None
    tech = node_nm * 1e-9
    sram_pj, sram_um2 = {}, {}
    for sram, (size, bits) in sram_geometry(env).items():
        attrs = {"tech_node": tech, "width": bits, "depth": max(1, size * 8 // bits)}
        cost = hwcomponents.get_action_cost("SRAM", attrs, "read", {})
        sram_pj[sram] = cost.energy * 1e12 / bits
        sram_um2[sram] = hwcomponents.get_area("SRAM", attrs) * 1e12 / (size * 8)
    mac = {"tech_node": tech, "multiplier_width": 8, "adder_width": 32}
    adder = {"tech_node": tech, "width": 32}
    return {
        "sram_pj_per_bit": sram_pj,
        "sram_um2_per_bit": sram_um2,
        "mac_pj": hwcomponents.get_action_cost("intmac", mac, "compute", {}).energy * 1e12,
        "mac_um2": hwcomponents.get_area("intmac", mac) * 1e12,
        "alu_lane_pj": hwcomponents.get_action_cost("intadder", adder, "add", {}).energy * 1e12,
        "alu_lane_um2": 3 * hwcomponents.get_area("intadder", adder) * 1e12,
    }
