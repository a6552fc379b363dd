"""Minimal safetensors reader/writer (no dependency on the `safetensors` package).

Format: 8-byte little-endian u64 header length N, then N bytes of JSON
{name: {"dtype": "F32"|"F16"|"BF16"|..., "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {...}},
then the raw little-endian tensor bytes; offsets are relative to the end of the header.
"""
import json
import struct

import numpy as np

_NP = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I64": "<i8", "I32": "<i4", "I16": "<i2", "U8": "u1", "I8": "i1",
       "BOOL": "?"}
ITEMSIZE = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "I16": 2, "U8": 1, "I8": 1, "BOOL": 1}


def f32_to_bf16_bits(a: np.ndarray) -> np.ndarray:
    """float -> bfloat16 bit pattern (uint16), round to nearest even (as torch does)."""
    a = np.ascontiguousarray(np.asarray(a, dtype=np.float32))
    u = a.view(np.uint32).astype(np.uint64)
    rounding_bias = ((u >> 16) & 1) + 0x7FFF
    out = ((u + rounding_bias) >> 16).astype(np.uint16)
    nan = np.isnan(a)
    out[nan] = 0x7FC0
    return out


def bf16_bits_to_f32(b: np.ndarray) -> np.ndarray:
    return (np.asarray(b, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def stored_values(arr: np.ndarray, dtype: str) -> np.ndarray:
    """The float64 values a tensor has once stored with `dtype` (what a reader sees after upcasting)."""
    if dtype == "BF16":
        return bf16_bits_to_f32(f32_to_bf16_bits(arr)).astype(np.float64)
    if dtype == "F16":
        return np.asarray(arr, dtype=np.float16).astype(np.float64)
    if dtype == "F32":
        return np.asarray(arr, dtype=np.float32).astype(np.float64)
    raise ValueError(dtype)


def write_safetensors(path, tensors: dict, dtypes: dict, metadata=None):
    """tensors: name -> numpy array (any float dtype); dtypes: name -> 'F32'|'F16'|'BF16'."""
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        arr = np.asarray(tensors[name])
        dt = dtypes.get(name, "F32")
        if dt == "BF16":
            raw = f32_to_bf16_bits(arr).astype("<u2").tobytes()
        else:
            raw = np.ascontiguousarray(arr.astype(_NP[dt])).tobytes()
        header[name] = {"dtype": dt, "shape": [int(s) for s in arr.shape], "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = metadata or {"format": "pt"}
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """Returns (dict name -> float64 numpy array with the stored values, dict name -> dtype string)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    base = 8 + n
    out, dts = {}, {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = info["dtype"]
        b, e = info["data_offsets"]
        shape = tuple(info["shape"])
        raw = data[base + b: base + e]
        count = int(np.prod(shape)) if shape else 1
        if len(raw) != count * ITEMSIZE[dt]:
            raise ValueError(f"{name}: {len(raw)} bytes for shape {shape} {dt}")
        if dt == "BF16":
            arr = bf16_bits_to_f32(np.frombuffer(raw, dtype="<u2"))
        else:
            arr = np.frombuffer(raw, dtype=_NP[dt])
        out[name] = arr.astype(np.float64).reshape(shape)
        dts[name] = dt
    return out, dts
