#!/usr/bin/env python3
"""Compares `di infer` outputs with the fixtures, in plain Python (no torch, no numpy), for scripts/gpu-check.sh.

  check_outputs.py prepare SRC.safetensors OUT.safetensors NAME=NEW_NAME ...
      copies tensors of SRC into OUT under new names (e.g. greedy_input_ids=input_ids) so that `di infer --input-ids`
      reads a fixture's generation prompts.
  check_outputs.py compare EXPECTED.safetensors:NAME ACTUAL.safetensors:NAME [--mask FILE:NAME] (--abs T | --rel T | --exact)
      --abs T: max |actual - expected| <= T;  --rel T: max |actual - expected| / max |expected| <= T;
      --exact: equal (token ids). With --mask ([B, T], 0 = padding), positions [b, t, ...] where the mask is 0 are
      not compared (the fixtures' convention). Prints one line; exit status 0 when within, 1 otherwise.
"""
import array
import json
import struct
import sys

FORMATS = {"F32": "f", "F64": "d", "I64": "q", "I32": "i", "I16": "h", "U8": "B", "I8": "b", "BOOL": "B"}


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + size])
    header.pop("__metadata__", None)
    return header, data[8 + size:]


def values(path, name):
    header, body = read(path)
    if name not in header:
        raise SystemExit(f"{path}: no tensor {name} (found: {', '.join(sorted(header))})")
    entry = header[name]
    start, end = entry["data_offsets"]
    raw = body[start:end]
    dtype = entry["dtype"]
    if dtype in ("BF16", "F16"):
        halves = array.array("H", raw)
        if dtype == "BF16":
            out = [struct.unpack("<f", struct.pack("<I", h << 16))[0] for h in halves]
        else:
            out = [struct.unpack("<e", struct.pack("<H", h))[0] for h in halves]
    else:
        out = array.array(FORMATS[dtype], raw).tolist()
    return entry["shape"], out


def write(path, tensors):
    header, offset, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def prepare(source, target, mappings):
    header, body = read(source)
    tensors = {}
    for mapping in mappings:
        old, new = mapping.split("=")
        entry = header[old]
        start, end = entry["data_offsets"]
        tensors[new] = (entry["dtype"], entry["shape"], body[start:end])
    write(target, tensors)


def split(spec):
    path, name = spec.rsplit(":", 1)
    return path, name


def compare(argv):
    expected_spec, actual_spec, rest = argv[0], argv[1], argv[2:]
    mask_spec, mode, limit = None, None, 0.0
    i = 0
    while i < len(rest):
        if rest[i] == "--mask":
            mask_spec, i = rest[i + 1], i + 2
        elif rest[i] in ("--abs", "--rel"):
            mode, limit, i = rest[i][2:], float(rest[i + 1]), i + 2
        elif rest[i] == "--exact":
            mode, i = "exact", i + 1
        else:
            raise SystemExit(f"unknown argument {rest[i]}")
    shape_e, expected = values(*split(expected_spec))
    shape_a, actual = values(*split(actual_spec))
    label = f"{actual_spec} vs {expected_spec}"
    if shape_e != shape_a:
        print(f"FAIL {label}: shape {shape_a}, expected {shape_e}")
        return 1
    keep = [True] * len(expected)
    if mask_spec:
        shape_m, mask = values(*split(mask_spec))
        inner = len(expected) // max(len(mask), 1)
        keep = [mask[k // inner] != 0 for k in range(len(expected))]
    pairs = [(a, e) for a, e, k in zip(actual, expected, keep) if k]
    if mode == "exact":
        wrong = sum(1 for a, e in pairs if a != e)
        print(f"{'PASS' if wrong == 0 else 'FAIL'} {label}: {wrong} of {len(pairs)} ids differ (must be equal)")
        return 0 if wrong == 0 else 1
    worst = max((abs(a - e) for a, e in pairs), default=0.0)
    if worst != worst:
        worst = float("inf")
    if mode == "rel":
        scale = max((abs(e) for _, e in pairs), default=1.0) or 1.0
        within = worst / scale <= limit
        print(f"{'PASS' if within else 'FAIL'} {label}: max |diff| {worst:.3g} = {worst / scale:.3g} of max |expected| {scale:.3g} (limit {limit:g} relative)")
    else:
        within = worst <= limit
        print(f"{'PASS' if within else 'FAIL'} {label}: max |diff| {worst:.3g} (limit {limit:g})")
    return 0 if within else 1


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("prepare", "compare"):
        raise SystemExit(__doc__)
    if sys.argv[1] == "prepare":
        prepare(sys.argv[2], sys.argv[3], sys.argv[4:])
        return 0
    return compare(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
