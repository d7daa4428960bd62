"""The hardware contract shared by the compiler, the simulator and the runtime: instruction
encoding and decoding (``isa``, ``docs/isa.md``), the hardware modules and their dependency
tokens (``modules``), simulated device memory (``memory``) and the disassembler."""
