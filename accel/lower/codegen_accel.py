"""Host code for accelerator programs: Python that drives the runtime's command queue.

The generated function takes the command queue ``q`` and the DRAM byte address of every
parameter. Host loops stay Python loops; each runtime call of the lowered program becomes the
matching queue method. Each micro-op kernel becomes a separate function that records it on a
``KernelRecorder``; the call site passes the host variables the kernel depends on, which is what
the runtime caches it by::

    def _kernel_0(k, ko):
        k.loop_begin(16, 1, 0, 1)
        k.push(0, 0, 0, 0, 0, 0, 0, 0)
        k.loop_end()

    def matmul(q, A, B, C):
        for ko in range(16):
            q.load_buffer_2d(A, ko, 1, 1, 1, 0, 0, 0, 0, 0, 2)
            ...
            q.push_gemm(_kernel_0, (ko,))
        q.synchronize()
"""

from __future__ import annotations

from accel.errors import BuildError
from accel.lower import coproc, ir
from accel.lower.codegen_host import HostCodegen
from accel.te.visit import free_vars

_PUSH_METHODS = {coproc.GEMM_KERNEL: "push_gemm", coproc.ALU_KERNEL: "push_alu"}


class AccelCodegen(HostCodegen):
    """Generates the host function of a program that uses the accelerator."""

    def __init__(self, name: str, params: list[ir.Buffer], onchip_scopes):
        super().__init__(name, params)
        self.used.add("q")
        self.onchip = set(onchip_scopes)
        self.kernels: list[str] = []
        self.in_kernel = False

    def generate(self, body: ir.Stmt) -> str:
        args = ", ".join(["q"] + [self.name_of(b, b.name) for b in self.params])
        main = [f"def {self.name}({args}):"]
        self.lines = main
        before = len(self.lines)
        self.stmt(body, 1, {})
        if len(self.lines) == before:
            self.lines.append("    pass")
        return "\n".join(self.kernels + main) + "\n"

    def stmt(self, s: ir.Stmt, depth: int, ranges: dict) -> None:
        if isinstance(s, ir.Allocate) and s.buffer.scope in self.onchip:
            self.stmt(s.body, depth, ranges)  # on-chip storage is placed statically
        elif isinstance(s, ir.Allocate):
            raise BuildError(
                f"{s.buffer.name} ({s.buffer.scope}) is an intermediate tensor in device memory "
                "between accelerator stages, which an accelerator program cannot allocate; make "
                "it an argument of the program, or keep it on chip (set_scope to an on-chip "
                "scope and compute it where it is used)"
            )
        elif coproc.is_uop_scope(s):
            self.kernel(s, depth)
        elif isinstance(s, ir.Evaluate):
            self.call(s, depth)
        elif isinstance(s, ir.Store):
            raise BuildError(self._host_access(s.buffer))
        else:
            super().stmt(s, depth, ranges)

    def loop(self, s: ir.For, depth: int, ranges: dict) -> None:
        var = self.name_of(s.var, s.var.name)
        lo = self.expr(s.min, scalar=True)
        hi = self.expr(s.min + s.extent, scalar=True)
        self.emit(depth, f"for {var} in range({lo}, {hi}):")
        self.stmt(s.body, depth + 1, ranges)

    def load(self, e: ir.Load, scalar: bool) -> str:
        raise BuildError(self._host_access(e.buffer))

    def _host_access(self, buf: ir.Buffer) -> str:
        where = "an on-chip buffer" if buf.scope in self.onchip else "device memory"
        return (
            f"{buf.name} ({buf.scope}) is accessed by a host loop, but it is {where} of an "
            "accelerator program; give the stage that uses it a dma_copy or alu pragma, or "
            "tensorize it"
        )

    # -- calls -----------------------------------------------------------------------------
    def call(self, s: ir.Evaluate, depth: int) -> None:
        kind = coproc.runtime_call(s)
        if kind is None or kind.in_kernel != self.in_kernel:
            where = "inside a micro-op kernel" if self.in_kernel else "outside micro-op kernels"
            raise BuildError(f"the accelerator host program cannot call {s.value} {where}")
        receiver = "k" if self.in_kernel else "q"
        # Arguments follow the declared fields, which are the method's parameters in order.
        self.emit(depth, f"{receiver}.{kind.method}({', '.join(map(self.arg, s.value.args))})")

    def arg(self, a) -> str:
        if isinstance(a, ir.Buffer):
            return self.name_of(a, a.name)
        if isinstance(a, coproc.SramAddr):
            raise BuildError(f"on-chip buffer {a.buffer.name} has no SRAM address")
        return self.expr(a, scalar=True)

    def kernel(self, s: ir.AttrStmt, depth: int) -> None:
        """Emit the kernel's recording function and, here, its push."""
        if s.value not in _PUSH_METHODS:
            kinds = ", ".join(_PUSH_METHODS)
            raise BuildError(f"unknown micro-op kernel kind {s.value!r}; the kinds are {kinds}")
        captured = sorted(_stmt_vars(s.body), key=lambda v: self.name_of(v, v.name))
        name = self.fresh(f"_kernel_{len(self.kernels)}")
        saved_lines, saved_flag = self.lines, self.in_kernel
        self.lines, self.in_kernel = [], True
        params = ", ".join(["k"] + [self.name_of(v, v.name) for v in captured])
        self.emit(0, f"def {name}({params}):")
        self.stmt(s.body, 1, {})
        self.kernels.extend(self.lines + [""])
        self.lines, self.in_kernel = saved_lines, saved_flag
        key = "".join(f"{self.name_of(v, v.name)}, " for v in captured)
        self.emit(depth, f"q.{_PUSH_METHODS[s.value]}({name}, ({key.rstrip(' ')}))")


def _stmt_vars(s: ir.Stmt) -> set:
    """Variables used in ``s`` but bound outside it."""
    used, bound = set(), set()
    for x in ir.walk_stmt(s):
        if isinstance(x, ir.For):
            bound.add(x.var)
        for e in ir.stmt_exprs(x):
            used |= free_vars(e)
    return used - bound


def generate_accel_source(
    name: str, params: list[ir.Buffer], body: ir.Stmt, env
) -> tuple[str, dict]:
    """Python source of an accelerator program's host function and the constants it uses."""
    gen = AccelCodegen(name, params, coproc.onchip_scopes(env))
    return gen.generate(body), gen.consts


def uses_accelerator(body: ir.Stmt) -> bool:
    """Whether a lowered program calls the accelerator runtime."""
    return any(coproc.is_stage(s) for s in ir.walk_stmt(body))


__all__ = ["AccelCodegen", "generate_accel_source", "uses_accelerator"]
