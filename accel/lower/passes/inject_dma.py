"""Inject DMA: a copy nest under the ``dma_copy`` pragma becomes 2-D loads or stores.

Matches ``pragma_dma_copy`` around a perfect loop nest whose innermost statement copies one
buffer into another: ``dst[i] = src[j]``, optionally cast (int8 into the accumulator is an
ACC_8BIT load; accumulator to int8 output is a store), optionally ``if_then_else(cond, src[j],
0)`` where ``cond`` bounds the two outer loops of the copy (zero padding). Global to an on-chip
scope is a load, accumulator to global is a store.

The innermost loops must cover exactly one tile (a DMA element), contiguous on both sides. The
tile loops outside are merged where both sides stay contiguous; the innermost remaining one is
the row (``x``), the next the column of rows (``y``, its source stride is ``x_stride``); loops
beyond those two stay host loops around the call. The on-chip side must be written compactly.

Refuses, with the reason: a copy without an on-chip side or with two, the wrong data types,
indices not affine in the loops, a tile that is not contiguous, offsets not on tile boundaries,
padding on anything but the two DMA loops, and sizes or strides the instruction cannot encode.
"""

from __future__ import annotations

from accel.arith.simplify import Affine, affine, from_affine, simplify
from accel.env import Environment
from accel.errors import LoweringError
from accel.hw.isa import MemType, Opcode, field_tables
from accel.lower import coproc, ir
from accel.lower.tile_access import (
    TileLoop,
    affine_in,
    merge_loops,
    split_tile,
    tile_base,
    tile_loops,
)
from accel.te.expr import BinOp, Cast, Cmp, Const, Expr, Logic, Select, Var
from accel.te.visit import free_vars

# The two sides of a DMA, as named in the steps of its loops.
SRAM, DRAM = "on chip", "in DRAM"


def inject_dma(stmt: ir.Stmt, env: Environment) -> ir.Stmt:
    """Replace every ``dma_copy`` nest of ``stmt`` by load/store calls in a module scope."""

    def fstmt(s: ir.Stmt) -> ir.Stmt | None:
        if isinstance(s, ir.AttrStmt) and s.key == "pragma_dma_copy":
            return _DmaCopy(s.body, env, getattr(s.node, "name", s.node)).lower()
        return None

    return ir.rewrite_stmt(stmt, fstmt)


class _DmaCopy:
    def __init__(self, body: ir.Stmt, env: Environment, axis: str):
        self.env = env
        self.where = f"dma_copy at axis {axis}"
        self.loops: list[tuple[Var, int]] = []
        while isinstance(body, ir.For):
            if not isinstance(body.extent, Const) or body.min != Const(0):
                raise LoweringError(f"{self.where}: loop {body.var.name} has a variable extent")
            self.loops.append((body.var, body.extent.value))
            body = body.body
        if not isinstance(body, ir.Store):
            raise LoweringError(
                f"{self.where}: expected a perfect loop nest around one copy, found "
                f"{type(body).__name__} (a split that does not divide its axis adds a guard)"
            )
        self.store = body

    def fail(self, why: str):
        raise LoweringError(f"{self.where} ({self.store.buffer.name}): {why}")

    # -- what is copied ------------------------------------------------------------------------
    def lower(self) -> ir.Stmt:
        value, cond, cast = self._source(self.store.value)
        dst, src = self.store.buffer, value.buffer
        onchip = coproc.onchip_scopes(self.env)
        if dst.scope in onchip and src.scope == ir.GLOBAL:
            mem_type = self._load_type(dst, src, cast)
            sram_buf, sram_index, dram_buf, dram_index = dst, self.store.index, src, value.index
        elif src.scope == self.env.acc_scope and dst.scope == ir.GLOBAL:
            if cond is not None:
                self.fail("stores cannot pad; only loads zero-fill")
            out = self.env.out_dtype
            if dst.dtype != out:
                self.fail(f"a store writes {out}, but the destination {dst.name} is {dst.dtype}")
            if (cast or src.dtype) != out:  # no cast needed when accumulators are already out
                self.fail(
                    f"a store narrows {src.dtype} accumulators to {out}; cast the stored value "
                    f"to {out} (.astype({out!r}))"
                )
            mem_type = MemType.OUT
            sram_buf, sram_index, dram_buf, dram_index = src, value.index, dst, self.store.index
        else:
            self.fail(
                f"copies {src.name} ({src.scope}) into {dst.name} ({dst.scope}); a DMA moves "
                f"between global memory and {', '.join(onchip)}, or from "
                f"{self.env.acc_scope} to global memory"
            )
        tile = coproc.tile_elems(self.env, mem_type)
        forms = {SRAM: self._form(sram_index), DRAM: self._form(dram_index)}
        inner, outer = split_tile(self.loops, forms, tile, self.fail)
        if cond is not None and free_vars(cond) & {v for v, _ in inner}:
            self.fail("padding must cover whole tiles")
        loops = tile_loops(outer, forms, tile, self.fail)
        loops = merge_loops(loops, keep=self._padded_vars(cond, loops))
        call = self._call(mem_type, sram_buf, sram_index, dram_buf, dram_index, loops, cond, tile)
        stage = (
            coproc.STORE_STAGE
            if mem_type == MemType.OUT
            else (
                coproc.LOAD_STAGE
                if mem_type in (MemType.INP, MemType.WGT)
                else coproc.COMPUTE_STAGE
            )
        )
        return coproc.in_stage(stage, call)

    def _source(self, value: Expr):
        """(load, padding condition or None, cast dtype or None) of the copied value."""
        cast = cond = None
        if isinstance(value, Cast):
            cast, value = value.dtype, value.value
        if isinstance(value, Select):
            if not (isinstance(value.false_value, Const) and value.false_value.value == 0):
                self.fail(f"padding must be zero, found {value.false_value}")
            cond, value = value.cond, value.true_value
            if isinstance(value, Cast):
                cast, value = value.dtype, value.value
        if not isinstance(value, ir.Load):
            self.fail(f"the value {value} is not a plain copy of another buffer")
        return value, cond, cast

    def _load_type(self, dst: ir.Buffer, src: ir.Buffer, cast: str | None) -> MemType:
        env = self.env
        if dst.scope == env.acc_scope:
            if dst.dtype != env.acc_dtype:
                self.fail(
                    f"the accumulator buffer {dst.name} must be {env.acc_dtype}, not {dst.dtype}"
                )
            if src.dtype == env.acc_dtype:
                return MemType.ACC
            if src.dtype == env.inp_dtype:
                return MemType.ACC_8BIT
            self.fail(f"the accumulator loads {env.acc_dtype} or {env.inp_dtype}, not {src.dtype}")
        mem_type = coproc.onchip_scopes(env)[dst.scope]
        want = env.inp_dtype if mem_type == MemType.INP else env.wgt_dtype
        if src.dtype != want or dst.dtype != want:
            self.fail(
                f"{dst.scope} holds {want}; {src.name} is {src.dtype}, {dst.name} {dst.dtype}"
            )
        return mem_type

    # -- index patterns ------------------------------------------------------------------------
    def _form(self, index: Expr) -> Affine:
        return affine_in(index, self.loops, self.fail, "the copy loops")

    def _padded_vars(self, cond, loops: list[TileLoop]) -> set[Var]:
        if cond is None:
            return set()
        return free_vars(cond) & {lp.var for lp in loops}

    def _whole_tile_condition(self, cond) -> Expr | None:
        """The conjuncts of ``cond`` that involve no copy loop: where they fail, the whole
        region is padding (a tile of one padded row, say)."""
        if cond is None:
            return None
        nest = {v for v, _ in self.loops}
        atoms = [a for a in _conjuncts(cond, self) if not free_vars(a) & nest]
        result = None
        for atom in atoms:
            result = atom if result is None else Logic("and", result, atom)
        return result

    # -- the call ------------------------------------------------------------------------------
    def _call(self, mem_type, sram_buf, sram_index, dram_buf, dram_index, loops, cond, tile):
        unit = TileLoop(Var("unit"), 1, {SRAM: 1, DRAM: 1})
        if loops and loops[-1].steps[DRAM] == 1:  # rows of contiguous tiles, then a column of rows
            x = loops[-1]
            y = loops[-2] if len(loops) > 1 else unit
            host = loops[:-2]
        else:  # each row is one tile; the loop walks rows
            x = unit
            y = loops[-1] if loops else unit
            host = loops[:-1]
        if (x.extent > 1 and x.steps[SRAM] != 1) or (y.extent > 1 and y.steps[SRAM] != x.extent):
            self.fail("the on-chip side is not written compactly (row by row)")
        padded = self._padded_vars(cond, loops)
        if padded - {x.var, y.var}:
            names = ", ".join(v.name for v in padded - {x.var, y.var})
            self.fail(f"padding depends on loop {names}, outside the two DMA loops")
        x_pad = self._pads(cond, x)
        y_pad = self._pads(cond, y)
        sram_base = tile_base(self._form(sram_index), self.loops, tile, self.fail)
        dram_base = tile_base(self._form(dram_index), self.loops, tile, self.fail)
        for lp in host:
            sram_base = sram_base + lp.var * lp.steps[SRAM]
            dram_base = dram_base + lp.var * lp.steps[DRAM]
        dram_offset = simplify(dram_base + x_pad[0] * x.steps[DRAM] + y_pad[0] * y.steps[DRAM])
        x_size = simplify(Const(x.extent) - x_pad[0] - x_pad[1])
        y_size = simplify(Const(y.extent) - y_pad[0] - y_pad[1])
        whole = self._whole_tile_condition(cond)
        if whole is not None:  # all rows are padding where it fails (the runtime loads zeros)
            y_pad = (
                simplify(Select(whole, y_pad[0], Const(y.extent), "int32")),
                simplify(Select(whole, y_pad[1], Const(0), "int32")),
            )
            y_size = simplify(Select(whole, y_size, Const(0), "int32"))
        sram = coproc.SramAddr(sram_buf, simplify(sram_base))
        stride = y.steps[DRAM] if y.extent > 1 else x.extent
        self._check_fields(x_size, y_size, stride, x_pad, y_pad)
        if mem_type == MemType.OUT:
            stmt = coproc.STORE_2D(
                src_sram_index=sram,
                src_memory_type=int(mem_type),
                dst_addr=dram_buf,
                dst_elem_offset=dram_offset,
                x_size=x_size,
                y_size=y_size,
                x_stride=stride,
            )
        else:
            stmt = coproc.LOAD_2D(
                src_addr=dram_buf,
                src_elem_offset=dram_offset,
                x_size=x_size,
                y_size=y_size,
                x_stride=stride,
                x_pad_before=x_pad[0],
                y_pad_before=y_pad[0],
                x_pad_after=x_pad[1],
                y_pad_after=y_pad[1],
                dst_sram_index=sram,
                dst_memory_type=int(mem_type),
            )
        for lp in reversed(host):
            stmt = ir.loop(lp.var, lp.extent, stmt)
        return stmt

    def _pads(self, cond, lp: TileLoop) -> tuple[Expr, Expr]:
        """(before, after): the iterations of ``lp`` at either end that ``cond`` excludes."""
        if cond is None or lp.var not in free_vars(cond):
            return Const(0), Const(0)
        lower: list[Expr] = []
        upper: list[Expr] = []
        nest = {v for v, _ in self.loops}
        for atom in _conjuncts(cond, self):
            if lp.var not in free_vars(atom):
                continue
            # Normalise to a*v + r >= 0.
            diff = affine(simplify(atom.a - atom.b))
            if atom.op in ("le", "lt"):
                diff = diff.scale(-1)
            if atom.op in ("gt", "lt"):
                diff = diff + Affine({}, -1)
            if atom.op not in ("ge", "gt", "le", "lt"):
                self.fail(f"padding condition {atom} is not a bound")
            a = diff.coef(lp.var)
            rest = Affine({k: c for k, c in diff.terms.items() if k is not lp.var}, diff.const)
            if any(isinstance(k, Var) and k in nest for k in rest.terms):
                self.fail(f"padding condition {atom} bounds two copy loops at once")
            if a == 0 or any(free_vars(k) & nest for k in rest.terms):
                self.fail(f"padding condition {atom} is not affine in the copy loops")
            r = from_affine(rest)
            if a > 0:  # v >= ceil(-r / a)
                lower.append(BinOp("floordiv", Const(a - 1) - r, Const(a), "int32"))
            else:  # v <= floor(r / -a)
                upper.append(BinOp("floordiv", r, Const(-a), "int32") + 1)
        lo: Expr = Const(0)
        for b in lower:
            lo = BinOp("max", lo, b, "int32")
        hi: Expr = Const(lp.extent)
        for b in upper:
            hi = BinOp("min", hi, b, "int32")
        lo = BinOp("min", lo, Const(lp.extent), "int32")
        size = BinOp("max", hi - lo, Const(0), "int32")
        return simplify(lo), simplify(Const(lp.extent) - lo - size)

    def _check_fields(self, x_size, y_size, stride, x_pad, y_pad) -> None:
        fields = {f.name: f for f in field_tables(self.env).for_opcode(Opcode.LOAD)}
        for name, value in (
            ("x_size", x_size),
            ("y_size", y_size),
            ("x_stride", Const(stride)),
            ("x_pad_0", x_pad[0]),
            ("x_pad_1", x_pad[1]),
            ("y_pad_0", y_pad[0]),
            ("y_pad_1", y_pad[1]),
        ):
            if isinstance(value, Const) and not 0 <= value.value <= fields[name].max:
                self.fail(
                    f"{name} = {value.value} does not fit the instruction (at most "
                    f"{fields[name].max})"
                )


def _conjuncts(cond: Expr, copy: _DmaCopy) -> list[Cmp]:
    if isinstance(cond, Logic) and cond.op == "and":
        return _conjuncts(cond.a, copy) + _conjuncts(cond.b, copy)
    if isinstance(cond, Cmp):
        return [cond]
    copy.fail(f"padding condition {cond} is not a conjunction of bounds")
    return []
