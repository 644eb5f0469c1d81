#!/usr/bin/env python3
"""PyTorch eager baseline for `di bench model`.

Builds a model of the same shapes as the one `di` measures (GPT-2 or a Llama-family decoder, random weights
~ N(0, 0.02)), in plain PyTorch eager written for this bench (no transformers), then answers one JSON command per
stdin line with one JSON line on stdout, so that `di` can interleave its own measurements with these in the same
round:

  {"op": "warmup"}    every path once on small shapes
  {"op": "hw"}        matmul n^3 in the run's dtype, and a large tensor sum (read) and copy (read + write)
  {"op": "forward"}   one forward pass over [batch, sequence] random ids, logits for every position
  {"op": "generate"}  greedy generation: prefill [batch, sequence] (logits of the last position only), then
                      new_tokens - 1 decode steps of one token each, with a preallocated key/value cache
  {"op": "quit"}

Started as `torch_model_bench.py SPEC_JSON`; SPEC_JSON names family, sizes, dtype, device, threads. Its first line
says which torch and which BLAS it runs on. Times are wall seconds, synchronised on CUDA.
"""
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def blas_libraries():
    """BLAS-looking libraries this process has mapped (after a matmul), resolved through symlinks."""
    found = set()
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                parts = line.split()
                if len(parts) < 6:
                    continue
                name = os.path.basename(parts[5]).lower()
                if any(key in name for key in ("blas", "mkl", "lapack", "dnnl")):
                    found.add(os.path.realpath(parts[5]))
    except OSError:
        pass
    return sorted(found)


def blas_description():
    config = torch.__config__.show()
    settings = [s.strip() for line in config.splitlines() for s in line.split(",") if "BLAS_INFO" in s]
    mkl = "MKL" if torch.backends.mkl.is_available() else None
    libraries = blas_libraries()
    names = [os.path.basename(p) for p in libraries]
    if any("openblas" in n for n in names):
        kind = "OpenBLAS"
    elif mkl:
        kind = "MKL"
    elif any(n.startswith("libblas") for n in names):
        kind = "reference BLAS (netlib libblas)"
    else:
        kind = "unknown"
    return {"kind": kind, "build": settings[0] if settings else "", "libraries": libraries}


class Timer:
    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def now(self):
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()


def sdpa(query, key, value, causal):
    """[B, H, T, D] attention; PyTorch >= 2.0 has the fused kernel, 1.13 gets the textbook form."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(query, key, value, is_causal=causal)
    scores = torch.matmul(query, key.transpose(-1, -2)) / math.sqrt(query.shape[-1])
    if causal:
        steps, keys = scores.shape[-2], scores.shape[-1]
        mask = torch.ones(steps, keys, dtype=torch.bool, device=scores.device).tril(keys - steps)
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.matmul(torch.softmax(scores.float(), dim=-1).to(value.dtype), value)


class Cache:
    def __init__(self, layers, batch, heads, capacity, head_dim, device, dtype):
        self.keys = [torch.empty(batch, heads, capacity, head_dim, device=device, dtype=dtype) for _ in range(layers)]
        self.values = [torch.empty(batch, heads, capacity, head_dim, device=device, dtype=dtype) for _ in range(layers)]
        self.length = 0

    def append(self, layer, key, value):
        steps = key.shape[2]
        self.keys[layer][:, :, self.length:self.length + steps].copy_(key)
        self.values[layer][:, :, self.length:self.length + steps].copy_(value)
        end = self.length + steps
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]


def normal(shape, device, dtype):
    return torch.empty(*shape, device=device, dtype=dtype).normal_(0.0, 0.02)


class Llama:
    """Llama / Mistral / Qwen2 / Qwen3 decoder: RMSNorm, RoPE, grouped-query attention, SwiGLU."""

    def __init__(self, s, device, dtype):
        self.s = s
        h, d, kv, hd, inter = s["hidden"], s["heads"], s["kv_heads"], s["head_dim"], s["intermediate"]
        self.embed = normal((s["vocab"], h), device, dtype)
        self.layers = []
        for _ in range(s["layers"]):
            layer = {
                "ln1": torch.ones(h, device=device, dtype=dtype),
                "q": normal((d * hd, h), device, dtype), "k": normal((kv * hd, h), device, dtype),
                "v": normal((kv * hd, h), device, dtype), "o": normal((h, d * hd), device, dtype),
                "ln2": torch.ones(h, device=device, dtype=dtype),
                "gate": normal((inter, h), device, dtype), "up": normal((inter, h), device, dtype),
                "down": normal((h, inter), device, dtype),
            }
            if s.get("qkv_bias"):
                for name, width in (("qb", d * hd), ("kb", kv * hd), ("vb", kv * hd)):
                    layer[name] = torch.zeros(width, device=device, dtype=dtype)
            if s.get("qk_norm"):
                layer["qn"] = torch.ones(hd, device=device, dtype=dtype)
                layer["kn"] = torch.ones(hd, device=device, dtype=dtype)
            self.layers.append(layer)
        self.norm = torch.ones(h, device=device, dtype=dtype)
        self.head = self.embed if s["tied"] else normal((s["vocab"], h), device, dtype)
        self.inv_freq = 1.0 / (s.get("rope_theta", 10000.0) ** (torch.arange(0, hd, 2, device=device).float() / hd))

    def rms(self, x, weight):
        variance = x.float().pow(2).mean(-1, keepdim=True)
        return weight * (x.float() * torch.rsqrt(variance + self.s.get("eps", 1e-5))).to(x.dtype)

    @staticmethod
    def rotate(x, cos, sin):
        half = x.shape[-1] // 2
        rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos + rotated * sin

    def forward(self, ids, cache=None, last_only=False):
        s = self.s
        b, t = ids.shape
        d, kv, hd = s["heads"], s["kv_heads"], s["head_dim"]
        past = cache.length if cache else 0
        pos = torch.arange(past, past + t, device=ids.device).float()
        angles = torch.outer(pos, self.inv_freq)
        angles = torch.cat((angles, angles), dim=-1)
        cos, sin = angles.cos().to(self.embed.dtype)[None, None], angles.sin().to(self.embed.dtype)[None, None]
        x = F.embedding(ids, self.embed)
        for i, L in enumerate(self.layers):
            y = self.rms(x, L["ln1"])
            q = F.linear(y, L["q"], L.get("qb")).view(b, t, d, hd)
            k = F.linear(y, L["k"], L.get("kb")).view(b, t, kv, hd)
            v = F.linear(y, L["v"], L.get("vb")).view(b, t, kv, hd).transpose(1, 2)
            if "qn" in L:
                q, k = self.rms(q, L["qn"]), self.rms(k, L["kn"])
            q = self.rotate(q.transpose(1, 2), cos, sin)
            k = self.rotate(k.transpose(1, 2), cos, sin)
            if cache is not None:
                k, v = cache.append(i, k, v)
            if d != kv:
                # transformers' repeat_kv: expand then reshape
                n = k.shape[2]
                k = k[:, :, None].expand(b, kv, d // kv, n, hd).reshape(b, d, n, hd)
                v = v[:, :, None].expand(b, kv, d // kv, n, hd).reshape(b, d, n, hd)
            a = sdpa(q, k, v, causal=t > 1)
            x = x + F.linear(a.transpose(1, 2).reshape(b, t, d * hd), L["o"])
            y = self.rms(x, L["ln2"])
            x = x + F.linear(F.silu(F.linear(y, L["gate"])) * F.linear(y, L["up"]), L["down"])
        if cache is not None:
            cache.length += t
        if last_only:
            x = x[:, -1]
        return F.linear(self.rms(x, self.norm), self.head)

    def cache(self, batch, capacity):
        s = self.s
        return Cache(s["layers"], batch, s["kv_heads"], capacity, s["head_dim"], self.embed.device, self.embed.dtype)


class Gpt2:
    """GPT-2: learned positions, LayerNorm, fused Conv1D q/k/v, gelu (tanh), tied head."""

    def __init__(self, s, device, dtype):
        self.s = s
        h = s["hidden"]
        self.wte = normal((s["vocab"], h), device, dtype)
        self.wpe = normal((s["positions"], h), device, dtype)
        self.layers = []
        for _ in range(s["layers"]):
            self.layers.append({
                "ln1w": torch.ones(h, device=device, dtype=dtype), "ln1b": torch.zeros(h, device=device, dtype=dtype),
                "attn": normal((h, 3 * h), device, dtype), "attnb": torch.zeros(3 * h, device=device, dtype=dtype),
                "proj": normal((h, h), device, dtype), "projb": torch.zeros(h, device=device, dtype=dtype),
                "ln2w": torch.ones(h, device=device, dtype=dtype), "ln2b": torch.zeros(h, device=device, dtype=dtype),
                "fc": normal((h, 4 * h), device, dtype), "fcb": torch.zeros(4 * h, device=device, dtype=dtype),
                "mproj": normal((4 * h, h), device, dtype), "mprojb": torch.zeros(h, device=device, dtype=dtype),
            })
        self.lnfw, self.lnfb = torch.ones(h, device=device, dtype=dtype), torch.zeros(h, device=device, dtype=dtype)

    @staticmethod
    def conv1d(x, weight, bias):
        # transformers' Conv1D: addmm over the flattened rows
        return torch.addmm(bias, x.reshape(-1, x.shape[-1]), weight).view(*x.shape[:-1], weight.shape[1])

    def forward(self, ids, cache=None, last_only=False):
        s = self.s
        b, t = ids.shape
        h, d = s["hidden"], s["heads"]
        hd = h // d
        eps = s.get("eps", 1e-5)
        past = cache.length if cache else 0
        x = F.embedding(ids, self.wte) + F.embedding(torch.arange(past, past + t, device=ids.device), self.wpe)
        for i, L in enumerate(self.layers):
            y = F.layer_norm(x, (h,), L["ln1w"], L["ln1b"], eps)
            q, k, v = self.conv1d(y, L["attn"], L["attnb"]).split(h, dim=2)
            q, k, v = (z.view(b, t, d, hd).transpose(1, 2) for z in (q, k, v))
            if cache is not None:
                k, v = cache.append(i, k, v)
            a = sdpa(q, k, v, causal=t > 1)
            x = x + self.conv1d(a.transpose(1, 2).reshape(b, t, h), L["proj"], L["projb"])
            y = F.layer_norm(x, (h,), L["ln2w"], L["ln2b"], eps)
            x = x + self.conv1d(F.gelu(self.conv1d(y, L["fc"], L["fcb"]), approximate="tanh"), L["mproj"], L["mprojb"])
        if cache is not None:
            cache.length += t
        if last_only:
            x = x[:, -1]
        return F.linear(F.layer_norm(x, (h,), self.lnfw, self.lnfb, eps), self.wte)

    def cache(self, batch, capacity):
        s = self.s
        h, d = s["hidden"], s["heads"]
        return Cache(s["layers"], batch, d, capacity, h // d, self.wte.device, self.wte.dtype)


def hardware(spec, device, dtype, timer):
    n = spec["matmul_size"]
    a, b = torch.randn(n, n, device=device).to(dtype), torch.randn(n, n, device=device).to(dtype)
    torch.matmul(a, b)
    start = timer.now()
    torch.matmul(a, b)
    matmul = timer.now() - start
    elements = spec["bandwidth_bytes"] // 4
    big = torch.ones(elements, device=device, dtype=torch.float32)
    other = torch.empty_like(big)
    big.sum()
    start = timer.now()
    big.sum()
    read = timer.now() - start
    other.copy_(big)
    start = timer.now()
    other.copy_(big)
    copy = timer.now() - start
    return {"matmul_flops_per_s": 2.0 * n ** 3 / matmul, "read_bytes_per_s": 4.0 * elements / read,
            "copy_bytes_per_s": 8.0 * elements / copy}


def main():
    spec = json.loads(sys.argv[1])
    device = torch.device(spec["device"])
    dtype = DTYPES[spec["dtype"]]
    if device.type == "cpu" and spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    torch.manual_seed(spec.get("seed", 0))
    timer = Timer(device)
    with torch.inference_mode():
        model = (Gpt2 if spec["family"] == "gpt2" else Llama)(spec, device, dtype)
        torch.matmul(torch.ones(8, 8), torch.ones(8, 8))
        ids = torch.randint(0, spec["vocab"], (spec["batch"], spec["sequence"]), device=device)
        reply({"ready": True, "torch": torch.__version__, "blas": blas_description(), "threads": torch.get_num_threads(),
               "sdpa": hasattr(F, "scaled_dot_product_attention"),
               "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"})
        for line in sys.stdin:
            op = json.loads(line)["op"]
            if op == "quit":
                break
            if op == "hw":
                reply(hardware(spec, device, dtype, timer))
            elif op == "warmup":
                small = ids[:, :8].contiguous()
                model.forward(small)
                cache = model.cache(spec["batch"], small.shape[1] + 2)
                token = model.forward(small, cache, last_only=True).float().argmax(-1, keepdim=True)
                model.forward(token, cache, last_only=True)
                timer.now()
                reply({"warmup": True})
            elif op == "forward":
                start = timer.now()
                model.forward(ids)
                reply({"forward_s": timer.now() - start})
            elif op == "generate":
                new = spec["new_tokens"]
                cache = model.cache(spec["batch"], spec["sequence"] + new)
                start = timer.now()
                token = model.forward(ids, cache, last_only=True).float().argmax(-1, keepdim=True)
                first = timer.now()
                for _ in range(new - 1):
                    token = model.forward(token, cache, last_only=True).float().argmax(-1, keepdim=True)
                end = timer.now()
                reply({"prefill_s": first - start, "decode_s": end - first, "decode_steps": new - 1})
            else:
                reply({"error": f"unknown op {op}"})


if __name__ == "__main__":
    main()
