"""The size a GGUF file must have, from its header: catches a truncated download before the model loads.

The header is parsed here, not with the `gguf` package: `gguf` comes only with the train extra, and the
CPU-only install runs GGUF files too. Only the header is read (values are skipped, not decoded), so the
check costs milliseconds even for multi-GB files. The sizes of the quantization types come from `gguf`
when it is installed (it knows the newest ones), else from the copy below.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

# ggml type id -> (elements per block, bytes per block); gguf.constants.GGML_QUANT_SIZES as of gguf 0.19.
_QUANT_SIZES: dict[int, tuple[int, int]] = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 9: (32, 40),
    10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 15: (256, 292),
    16: (256, 66), 17: (256, 74), 18: (256, 98), 19: (256, 50), 20: (32, 18), 21: (256, 110), 22: (256, 82),
    23: (256, 136), 24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8), 29: (256, 56), 30: (1, 2),
    34: (256, 54), 35: (256, 66), 39: (32, 17), 40: (64, 36), 41: (128, 18),
}
# GGUF metadata value types -> fixed size in bytes (8: string, 9: array are variable).
_SCALAR = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY, _UINT32 = 8, 9, 4
DEFAULT_ALIGNMENT = 32


class GGUFFormatError(ValueError):
    """The header cannot be read (truncated inside it, or not GGUF at all)."""


def quant_sizes() -> dict[int, tuple[int, int]]:
    try:
        from gguf.constants import GGML_QUANT_SIZES
    except ImportError:
        return _QUANT_SIZES
    return {**_QUANT_SIZES, **{int(t): tuple(v) for t, v in GGML_QUANT_SIZES.items()}}


class _Reader:
    def __init__(self, handle: BinaryIO):
        self.f = handle

    def take(self, n: int) -> bytes:
        data = self.f.read(n)
        if len(data) != n:
            raise GGUFFormatError("the file ends inside its header")
        return data

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack("<Q", self.take(8))[0]

    def string(self) -> bytes:
        return self.take(self.u64())

    def skip_string(self) -> None:
        self.f.seek(self.u64(), 1)

    def skip_value(self, vtype: int) -> None:
        if vtype in _SCALAR:
            self.f.seek(_SCALAR[vtype], 1)
        elif vtype == _STRING:
            self.skip_string()
        elif vtype == _ARRAY:
            item, count = self.u32(), self.u64()
            if item in _SCALAR:
                self.f.seek(_SCALAR[item] * count, 1)
            else:
                for _ in range(count):
                    self.skip_value(item)
        else:
            raise GGUFFormatError(f"unknown metadata value type {vtype}")


def expected_size(path: Path) -> int:
    """The least number of bytes the file must have: the end of its last tensor's data.

    Raises GGUFFormatError when the header itself is unreadable.
    """
    sizes = quant_sizes()
    with open(path, "rb") as handle:
        r = _Reader(handle)
        if r.take(4) != b"GGUF":
            raise GGUFFormatError("no GGUF magic")
        version = r.u32()
        if version == 1:  # counts were 32-bit in version 1
            n_tensors, n_kv = r.u32(), r.u32()
        else:
            n_tensors, n_kv = r.u64(), r.u64()
        alignment = DEFAULT_ALIGNMENT
        for _ in range(n_kv):
            key = r.string()
            vtype = r.u32()
            if key == b"general.alignment" and vtype == _UINT32:
                alignment = r.u32() or DEFAULT_ALIGNMENT
            else:
                r.skip_value(vtype)
        end = 0
        for _ in range(n_tensors):
            r.skip_string()
            n_dims = r.u32()
            elements = 1
            for _ in range(n_dims):
                elements *= r.u64()
            ggml_type, offset = r.u32(), r.u64()
            block, nbytes = sizes.get(ggml_type, (1, 0))  # an unknown type: at least its start must be there
            end = max(end, offset + elements // block * nbytes)
        header_end = handle.tell()
    data_start = -(-header_end // alignment) * alignment
    return data_start + end
