"""The accelerator tutorials move exactly the bytes and do exactly the work their schedules imply.

Each expected figure is derived by hand from the tutorial's shapes and schedule, following the
counters of docs/isa.md §4: bytes are x_size * y_size * element bytes of every LOAD/STORE
(padding not counted), gemm_counter and alu_counter are iter_out * iter_in * micro-ops of every
non-reset GEMM / every ALU instruction, and each micro-op kernel is loaded once per run (4 bytes
per micro-op).
"""

import pathlib
import runpy

import pytest

TUTORIALS = pathlib.Path(__file__).parents[2] / "tutorials"

# Default configuration: input tile 1x16 int8 = 16 B, weight tile 16x16 int8 = 256 B,
# accumulator tile 1x16 int32 = 64 B, output tile 1x16 int8 = 16 B.
EXPECTED = {
    # Two (1, 64, 1, 16) int32 arrays: 64 accumulator tiles each -> 2 * 64 * 64 B; one ALU ADD
    # kernel of 1 micro-op looping 64 times; 64 output tiles stored.
    "vta_get_started": {
        "inp_load_nbytes": 0,
        "wgt_load_nbytes": 0,
        "acc_load_nbytes": 2 * 64 * 64,
        "uop_load_nbytes": 1 * 4,
        "out_store_nbytes": 64 * 16,
        "gemm_counter": 0,
        "alu_counter": 64 * 1,
    },
    # 16 reduction blocks (ko): each loads 1 input tile and a column of 16 weight tiles, then one
    # GEMM of 16 iterations (output tiles) x 1 micro-op; two kernels (reset, update) of 1 micro-op;
    # 16 output tiles stored once.
    "matrix_multiply": {
        "inp_load_nbytes": 16 * 1 * 16,
        "wgt_load_nbytes": 16 * 16 * 256,
        "acc_load_nbytes": 0,
        "uop_load_nbytes": 2 * 4,
        "out_store_nbytes": 16 * 16,
        "gemm_counter": 16 * 16 * 1,
        "alu_counter": 0,
    },
    # 4 output blocks x 4 input blocks; each pair loads 16 input tiles and 16 x 16 weight tiles and
    # runs one GEMM of 16 (output tiles) x 16 (input tiles) iterations; per output block three
    # ALU kernels (>> 8, max 0, min 127) of 16 iterations and one store of 16 tiles. Five kernels
    # of 1 micro-op each (reset, update, shr, max, min), loaded once.
    "matrix_multiply_opt": {
        "inp_load_nbytes": 4 * 4 * 16 * 16,
        "wgt_load_nbytes": 4 * 4 * 16 * 16 * 256,
        "acc_load_nbytes": 0,
        "uop_load_nbytes": 5 * 4,
        "out_store_nbytes": 4 * 16 * 16,
        "gemm_counter": 4 * 4 * 16 * 16,
        "alu_counter": 4 * 3 * 16,
    },
    # 14x14, 256 -> 256, 3x3, pad 1, two virtual threads. Tiles: 2 output halves (8 blocks) x
    # 2 row tiles (7 rows) x 1 column tile (14), and per tile 16 input-channel blocks. Each input
    # load covers 9 x 16 padded tiles of which 8 rows x 14 columns are real (one padding row at
    # the top or bottom edge, one padding column each side): 112 tiles x 16 B. Each weight load
    # is 8 output blocks x 1 input block x 3 x 3 tiles x 256 B. GEMM work is every output tile
    # (16 blocks x 196 pixels) times 16 input blocks x 9 taps; three ALU ops per output tile.
    # Kernels per thread: reset (x 14 unrolled; 8 blocks and 7 rows as loop levels) 14 uops,
    # update (3 x 3 taps x 14 columns) 126 uops, three ALU kernels of 1 uop; the threads' kernels
    # differ (their SRAM halves), each loaded once.
    "convolution_opt": {
        "inp_load_nbytes": 2 * 2 * 16 * 8 * 14 * 16,
        "wgt_load_nbytes": 2 * 2 * 16 * 8 * 1 * 9 * 256,
        "acc_load_nbytes": 0,
        "uop_load_nbytes": 2 * (14 + 126 + 3) * 4,
        "out_store_nbytes": 16 * 14 * 14 * 16,
        "gemm_counter": 16 * 196 * 16 * 9,
        "alu_counter": 3 * 16 * 196,
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_tutorial_statistics(name, capsys):
    namespace = runpy.run_path(str(TUTORIALS / f"{name}.py"), run_name="__main__")
    stats = namespace["stats"]
    assert {key: stats[key] for key in EXPECTED[name]} == EXPECTED[name]
    assert stats["runs"] == 1
    assert "matches numpy" in capsys.readouterr().out
