"""Operators for the accelerator: compute definitions on packed layouts and default schedules."""

from accel.topi.conv2d import Conv2dTiles, conv2d_packed, default_tiles, schedule_conv2d_packed
from accel.topi.packing import pack_kernel, pack_nchw, unpack_nchw
from accel.topi.resnet import RESNET18_CONV2D

__all__ = [
    "RESNET18_CONV2D",
    "Conv2dTiles",
    "conv2d_packed",
    "default_tiles",
    "pack_kernel",
    "pack_nchw",
    "schedule_conv2d_packed",
    "unpack_nchw",
]
