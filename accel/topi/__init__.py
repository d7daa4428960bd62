"""Operators for the accelerator: compute definitions on packed layouts and default schedules."""

from accel.topi.common import AluStep, Operand, alu_epilogue
from accel.topi.conv2d import Conv2dTiles, conv2d_packed, default_tiles, schedule_conv2d_packed
from accel.topi.conv2d_transpose import (
    conv2d_transpose_packed,
    default_transpose_tiles,
    pack_kernel_transpose,
    schedule_conv2d_transpose_packed,
)
from accel.topi.dense import (
    DenseTiles,
    default_dense_tiles,
    dense_packed,
    pack_dense_bias,
    pack_dense_data,
    pack_dense_weight,
    schedule_dense_packed,
    unpack_dense,
)
from accel.topi.group_conv2d import group_conv2d_packed
from accel.topi.packing import pack_kernel, pack_nchw, unpack_nchw
from accel.topi.resnet import RESNET18_CONV2D
from accel.topi.vector import (
    VectorTiles,
    add_packed,
    add_scaled_packed,
    default_vector_tiles,
    map_packed,
    max_pool2d_packed,
    relu_packed,
    schedule_vector_packed,
    sum_pool2d_packed,
)

__all__ = [
    "AluStep",
    "Conv2dTiles",
    "DenseTiles",
    "Operand",
    "RESNET18_CONV2D",
    "VectorTiles",
    "add_packed",
    "add_scaled_packed",
    "alu_epilogue",
    "conv2d_packed",
    "conv2d_transpose_packed",
    "default_dense_tiles",
    "default_tiles",
    "default_transpose_tiles",
    "default_vector_tiles",
    "dense_packed",
    "group_conv2d_packed",
    "map_packed",
    "max_pool2d_packed",
    "pack_dense_bias",
    "pack_dense_data",
    "pack_dense_weight",
    "pack_kernel",
    "pack_kernel_transpose",
    "pack_nchw",
    "relu_packed",
    "schedule_conv2d_packed",
    "schedule_conv2d_transpose_packed",
    "schedule_dense_packed",
    "schedule_vector_packed",
    "sum_pool2d_packed",
    "unpack_dense",
    "unpack_nchw",
]
