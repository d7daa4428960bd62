"""Inject ALU: an elementwise stage under the ``alu`` pragma becomes an ALU micro-op kernel.

Matches ``pragma_alu`` around a perfect loop nest storing into an accumulator buffer one of::

    O[i] = I[i] op J[j]        op in add, min, max, mul, shr (J another accumulator buffer)
    O[i] = I[i] op c           op in add, sub, min, max, mul, shr, shl (c an int16 immediate)
    O[i] = I[i]                a copy: a shift right by 0

The ALU updates its destination in place (``acc[dst] = f(acc[dst], src)``), so ``O`` takes the
storage of ``I`` when nothing else reads ``I`` and both are allocated together (the way the
original stack's storage planner merged them); otherwise ``I`` is first copied into ``O`` by two
more kernels (multiply by 0, add ``I``), since an immediate operation never reads its source.
The innermost loops must cover one accumulator tile, contiguous on both sides; the tile loops
outside, merged where contiguous, give the kernel's loop levels: the outer two
become the instruction's loops, any further ones are unrolled into micro-ops.

Refuses, with the reason: non-accumulator buffers, other operations, an immediate that does not
fit, and indices that are not affine or do not cover whole tiles.
"""

from __future__ import annotations

from dataclasses import dataclass

from accel.arith.simplify import affine, simplify
from accel.env import Environment
from accel.errors import LoweringError
from accel.hw.isa import AluOp, field_tables
from accel.lower import coproc, ir
from accel.lower.tile_access import affine_in, merge_loops, split_tile, tile_base, tile_loops
from accel.te.expr import BinOp, Call, Const, Expr, Var
from accel.te.visit import walk

_TENSOR_OPS = {
    "add": AluOp.ADD,
    "min": AluOp.MIN,
    "max": AluOp.MAX,
    "mul": AluOp.MUL,
    "shr": AluOp.SHR,
}
_IMM_OPS = {**_TENSOR_OPS, "sub": AluOp.ADD, "shl": AluOp.SHR}
_COMMUTATIVE = ("add", "min", "max", "mul")


def inject_alu(stmt: ir.Stmt, env: Environment) -> ir.Stmt:
    """Replace every ``alu`` nest of ``stmt`` by ALU kernels in the compute module."""
    while True:
        site = next(
            (s for s in ir.walk_stmt(stmt) if isinstance(s, ir.AttrStmt) and s.key == "pragma_alu"),
            None,
        )
        if site is None:
            return stmt
        stmt = _AluStage(site, stmt, env).lower()


@dataclass
class _Operation:
    opcode: AluOp
    lhs: ir.Load
    rhs: ir.Load | None  # None with an immediate
    imm: int = 0


class _AluStage:
    def __init__(self, site: ir.AttrStmt, program: ir.Stmt, env: Environment):
        self.site, self.program, self.env = site, program, env
        self.where = f"alu at axis {getattr(site.node, 'name', site.node)}"
        self.loops: list[tuple[Var, int]] = []
        body = site.body
        while isinstance(body, ir.For):
            if not isinstance(body.extent, Const):
                self.fail(f"loop {body.var.name} has a variable extent")
            self.loops.append((body.var, body.extent.value))
            body = body.body
        if not isinstance(body, ir.Store):
            self.fail(f"expected a perfect loop nest around one store, found {type(body).__name__}")
        self.store = body
        self.tile = env.BATCH * env.BLOCK_OUT

    def fail(self, why: str):
        name = getattr(getattr(self, "store", None), "buffer", None)
        raise LoweringError(f"{self.where}{f' ({name.name})' if name else ''}: {why}")

    # -- matching --------------------------------------------------------------------------
    def lower(self) -> ir.Stmt:
        out = self.store.buffer
        self._check_acc(out)
        op = self._operation(self.store.value)
        for load in (op.lhs, op.rhs):
            if load is not None:
                self._check_acc(load.buffer)
        kernels = []
        alias = None
        if op.lhs.buffer is not out or self._form(op.lhs.index) != self._form(self.store.index):
            if self._can_alias(op.lhs.buffer, out) and self._same_index(op.lhs):
                alias, out = out, op.lhs.buffer
            else:  # copy the left operand into the destination first: zero it, then add
                index = self.store.index
                kernels.append(self._kernel(out, index, index, out, AluOp.MUL, True, 0))
                kernels.append(
                    self._kernel(out, index, op.lhs.index, op.lhs.buffer, AluOp.ADD, False, 0)
                )
        if op.rhs is not None:
            kernels.append(
                self._kernel(
                    out,
                    self.store.index,
                    op.rhs.index,
                    op.rhs.buffer,
                    op.opcode,
                    use_imm=False,
                    imm=0,
                )
            )
        elif op.opcode != AluOp.SHR or op.imm != 0 or not kernels:
            kernels.append(
                self._kernel(
                    out,
                    self.store.index,
                    self.store.index,
                    out,
                    op.opcode,
                    use_imm=True,
                    imm=op.imm,
                )
            )
        replacement = coproc.in_stage(coproc.COMPUTE_STAGE, ir.seq(*kernels))
        site = self.site
        program = ir.rewrite_stmt(self.program, lambda s: replacement if s is site else None)
        return program if alias is None else _rename(program, alias, out)

    def _operation(self, value: Expr) -> _Operation:
        if isinstance(value, ir.Load):
            return _Operation(AluOp.SHR, value, None, 0)
        linear = self._linear(value)
        if linear is not None:
            return linear
        if not isinstance(value, BinOp) or value.op not in _IMM_OPS:
            self.fail(
                f"{value} is not an ALU operation (add, sub or shift by a constant, min, max, mul, "
                "or a copy)"
            )
        a, b = value.a, value.b
        if isinstance(a, Const) and value.op in _COMMUTATIVE:
            a, b = b, a
        if not isinstance(a, ir.Load):
            self.fail(f"the left operand {a} must be an accumulator buffer")
        if isinstance(b, Const):
            imm = int(b.value)
            if value.op in ("sub", "shl"):
                imm = -imm
            self._check_imm(imm)
            return _Operation(_IMM_OPS[value.op], a, None, imm)
        if not isinstance(b, ir.Load) or value.op not in _TENSOR_OPS:
            self.fail(
                f"{value}: the right operand must be a constant or, for "
                f"{', '.join(_TENSOR_OPS)}, an accumulator buffer"
            )
        if value.op in _COMMUTATIVE and not self._same_index(a) and self._same_index(b):
            a, b = b, a
        return _Operation(_TENSOR_OPS[value.op], a, b, 0)

    def _linear(self, value: Expr) -> _Operation | None:
        """``c * x`` or ``x + d`` in whatever form simplification left it (``0 - x*3``)."""
        if not (isinstance(value, BinOp) and value.op in ("add", "sub", "mul")):
            return None
        form = affine(value)
        if len(form.terms) != 1:
            return None
        ((load, coef),) = form.terms.items()
        if not isinstance(load, ir.Load):
            return None
        if coef == 1:
            self._check_imm(form.const)
            return _Operation(AluOp.ADD, load, None, form.const)
        if form.const == 0:
            self._check_imm(coef)
            return _Operation(AluOp.MUL, load, None, coef)
        return None

    def _check_acc(self, buf: ir.Buffer) -> None:
        if buf.scope != self.env.acc_scope or buf.dtype != self.env.acc_dtype:
            self.fail(
                f"the ALU works on {self.env.acc_dtype} accumulators in {self.env.acc_scope}; "
                f"{buf.name} is {buf.dtype} in {buf.scope}"
            )

    def _check_imm(self, imm: int) -> None:
        field = next(f for f in field_tables(self.env).alu if f.name == "imm")
        if not field.min <= imm <= field.max:
            self.fail(f"the immediate {imm} does not fit {field.width} signed bits")

    def _same_index(self, load: ir.Load) -> bool:
        return load.buffer.shape == self.store.buffer.shape and self._form(
            load.index
        ) == self._form(self.store.index)

    def _can_alias(self, source: ir.Buffer, out: ir.Buffer) -> bool:
        """Whether ``out`` may take the storage of ``source``: read nowhere else, allocated
        next to it, same shape."""
        if source.shape != out.shape or source.dtype != out.dtype:
            return False
        parents = _allocation_parents(self.program)
        if source not in parents or parents.get(source) != parents.get(out):
            return False
        return _reads_outside(self.program, source, self.site) == 0

    # -- the kernel ------------------------------------------------------------------------
    def _form(self, index: Expr) -> tuple:
        """A canonical key of ``index``'s affine form, to compare two indices."""
        form = affine_in(index, self.loops, self.fail, "the stage's loops")
        return tuple(sorted(((id(a), c) for a, c in form.terms.items()))) + (form.const,)

    def _kernel(self, dst_buf, dst_index, src_index, src_buf, opcode, use_imm, imm) -> ir.Stmt:
        forms = {
            "dst": affine_in(dst_index, self.loops, self.fail, "the stage's loops"),
            "src": affine_in(src_index, self.loops, self.fail, "the stage's loops"),
        }
        _inner, outer = split_tile(self.loops, forms, self.tile, self.fail)
        levels = merge_loops(tile_loops(outer, forms, self.tile, self.fail))
        dst_base = coproc.SramAddr(
            dst_buf, tile_base(forms["dst"], self.loops, self.tile, self.fail)
        )
        src_base = coproc.SramAddr(
            src_buf, tile_base(forms["src"], self.loops, self.tile, self.fail)
        )
        folded, unrolled = levels[:2], levels[2:]
        for lp in unrolled:
            dst_base = coproc.SramAddr(
                dst_buf, simplify(dst_base.offset + lp.var * lp.steps["dst"])
            )
            src_base = coproc.SramAddr(
                src_buf, simplify(src_base.offset + lp.var * lp.steps["src"])
            )
        body: ir.Stmt = coproc.UOP_PUSH(
            mode=coproc.ALU_MODE,
            reset=0,
            dst=dst_base,
            src=dst_base if use_imm else src_base,
            wgt=Const(0),
            opcode=int(opcode),
            use_imm=int(use_imm),
            imm=imm,
        )
        for lp in reversed(unrolled):
            body = ir.loop(lp.var, lp.extent, body)
        begins = [
            coproc.LOOP_BEGIN(
                extent=lp.extent,
                dst_factor=lp.steps["dst"],
                src_factor=lp.steps["dst"] if use_imm else lp.steps["src"],
                wgt_factor=0,
            )
            for lp in folded
        ]
        ends = [coproc.LOOP_END() for _ in folded]
        return coproc.uop_scope(coproc.ALU_KERNEL, ir.seq(*begins, body, *ends))


def _allocation_parents(program: ir.Stmt) -> dict[ir.Buffer, int]:
    """For each allocated buffer, an id of the statement its chain of allocations sits in."""
    parents: dict[ir.Buffer, int] = {}

    def visit(s: ir.Stmt, parent: int) -> None:
        if isinstance(s, ir.Allocate):
            parents[s.buffer] = parent
            visit(s.body, parent)
            return
        for child in ir.child_stmts(s):
            visit(child, id(s))

    visit(program, 0)
    return parents


def _reads_outside(program: ir.Stmt, buf: ir.Buffer, site: ir.Stmt) -> int:
    """How many statements outside ``site`` read ``buf``."""
    count = 0
    stack = [program]
    while stack:
        s = stack.pop()
        if s is site:
            continue
        stack.extend(ir.child_stmts(s))
        for e in ir.stmt_exprs(s):
            for node in walk(e):
                if isinstance(node, ir.Load) and node.buffer is buf:
                    count += 1
                elif isinstance(node, Call) and _call_reads(node, buf):
                    count += 1
    return count


def _call_reads(c: Call, buf: ir.Buffer) -> bool:
    if coproc.STORE_2D.matches(c):
        src = coproc.STORE_2D.get(c, "src_sram_index")
        return isinstance(src, coproc.SramAddr) and src.buffer is buf
    if coproc.UOP_PUSH.matches(c):
        push = coproc.UOP_PUSH.named_args(c)
        if push["mode"] == Const(coproc.ALU_MODE) and push["use_imm"] == Const(0):
            src = push["src"]  # an immediate operation does not read its source
            return isinstance(src, coproc.SramAddr) and src.buffer is buf
    return False


def _rename(program: ir.Stmt, old: ir.Buffer, new: ir.Buffer) -> ir.Stmt:
    """``program`` with ``old`` replaced by ``new`` (and ``old``'s allocation dropped)."""

    def fexpr(e: Expr) -> Expr | None:
        if isinstance(e, ir.Load) and e.buffer is old:
            return ir.Load(new, e.index)
        if isinstance(e, coproc.SramAddr) and e.buffer is old:
            return coproc.SramAddr(new, e.offset)
        if isinstance(e, Call) and any(a is old for a in e.args):
            return Call(e.name, tuple(new if a is old else a for a in e.args), e.dtype)
        return None

    def fstmt(s: ir.Stmt) -> ir.Stmt | None:
        if isinstance(s, ir.Allocate) and s.buffer is old:
            return s.body
        if isinstance(s, ir.Store) and s.buffer is old:
            return ir.Store(new, s.index, s.value)
        return None

    return ir.rewrite_stmt(program, fstmt, fexpr)
