"""PyTorch eager side of `di bench text-to-image`: seconds per denoising step of a Stable Diffusion UNet.

A plain PyTorch UNet2DConditionModel of SD 1.x/2.x shapes (written for this bench from diffusers' architecture, no
diffusers needed), random weights, and the pipeline's denoising step: cat([latents] * 2), the UNet on the text
embeddings, classifier-free guidance, an elementwise scheduler update. Reads one JSON spec on stdin, prints one JSON
line: {"torch", "threads", "seconds_per_step": [...]} (the first, warm-up step left out).
Attention: F.scaled_dot_product_attention when torch has it (2.x), else the math path softmax(q k^T / sqrt(d)) v
one batch row at a time (torch 1.13: what diffusers' AttnProcessor computes, with memory bounded to one row).
"""
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


GROUPS = [32]


def attention(q, k, v):
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v)
    out = torch.empty_like(q)
    for b in range(q.shape[0]):
        scores = torch.baddbmm(torch.empty(q.shape[1], q.shape[2], k.shape[2], dtype=q.dtype, device=q.device), q[b], k[b].transpose(-1, -2),
                               beta=0, alpha=1 / math.sqrt(q.shape[-1]))
        out[b] = torch.bmm(scores.softmax(-1), v[b])
    return out


class Attn(nn.Module):
    def __init__(self, dim, context, heads, bias=False):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=bias)
        self.to_k = nn.Linear(context, dim, bias=bias)
        self.to_v = nn.Linear(context, dim, bias=bias)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x, context=None):
        context = x if context is None else context
        b, n, c = x.shape
        split = lambda t: t.view(b, -1, self.heads, c // self.heads).transpose(1, 2)
        out = attention(split(self.to_q(x)), split(self.to_k(context)), split(self.to_v(context)))
        return self.to_out(out.transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    def __init__(self, dim, context, heads):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn1, self.attn2 = Attn(dim, dim, heads), Attn(dim, context, heads)
        self.proj = nn.Linear(dim, dim * 8)
        self.out = nn.Linear(dim * 4, dim)

    def forward(self, x, context):
        x = self.attn1(self.norm1(x)) + x
        x = self.attn2(self.norm2(x), context) + x
        hidden, gate = self.proj(self.norm3(x)).chunk(2, dim=-1)
        return self.out(hidden * F.gelu(gate)) + x


class Transformer(nn.Module):
    def __init__(self, channels, context, heads, linear):
        super().__init__()
        self.linear = linear
        self.norm = nn.GroupNorm(GROUPS[0], channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, channels) if linear else nn.Conv2d(channels, channels, 1)
        self.block = Block(channels, context, heads)
        self.proj_out = nn.Linear(channels, channels) if linear else nn.Conv2d(channels, channels, 1)

    def forward(self, x, context):
        b, c, h, w = x.shape
        y = self.norm(x)
        if self.linear:
            y = self.proj_in(y.permute(0, 2, 3, 1).reshape(b, h * w, c))
        else:
            y = self.proj_in(y).permute(0, 2, 3, 1).reshape(b, h * w, c)
        y = self.block(y, context)
        if self.linear:
            y = self.proj_out(y).reshape(b, h, w, c).permute(0, 3, 1, 2)
        else:
            y = self.proj_out(y.reshape(b, h, w, c).permute(0, 3, 1, 2).contiguous())
        return y + x


class Resnet(nn.Module):
    def __init__(self, cin, cout, temb):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(GROUPS[0], cin, eps=1e-5), nn.Conv2d(cin, cout, 3, padding=1)
        self.time = nn.Linear(temb, cout)
        self.norm2, self.conv2 = nn.GroupNorm(GROUPS[0], cout, eps=1e-5), nn.Conv2d(cout, cout, 3, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x))) + self.time(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.shortcut is None else self.shortcut(x)) + h


class UNet(nn.Module):
    """UNet2DConditionModel with SD's block layout: cross-attention blocks but the deepest down / first up block."""

    def __init__(self, channels=(320, 640, 1280, 1280), heads=(8, 8, 8, 8), context=768, linear=False, layers=2):
        super().__init__()
        temb = channels[0] * 4
        self.c0 = channels[0]
        self.time1, self.time2 = nn.Linear(channels[0], temb), nn.Linear(temb, temb)
        self.conv_in = nn.Conv2d(4, channels[0], 3, padding=1)
        self.down = nn.ModuleList()
        skips = [channels[0]]
        for i, c in enumerate(channels):
            cin = channels[max(i - 1, 0)]
            last = i == len(channels) - 1
            block = nn.ModuleDict({
                "resnets": nn.ModuleList([Resnet(cin if j == 0 else c, c, temb) for j in range(layers)]),
                "attentions": nn.ModuleList([Transformer(c, context, heads[i], linear) for _ in range(layers)] if not last else []),
                "down": nn.ModuleList([] if last else [nn.Conv2d(c, c, 3, stride=2, padding=1)]),
            })
            self.down.append(block)
            skips += [c] * layers + ([] if last else [c])
        self.mid = nn.ModuleList([Resnet(channels[-1], channels[-1], temb), Transformer(channels[-1], context, heads[-1], linear),
                                  Resnet(channels[-1], channels[-1], temb)])
        self.up = nn.ModuleList()
        previous = channels[-1]
        for i, c in enumerate(reversed(channels)):
            j = len(channels) - 1 - i
            resnets = []
            for k in range(layers + 1):
                resnets.append(Resnet((previous if k == 0 else c) + skips.pop(), c, temb))
            block = nn.ModuleDict({
                "resnets": nn.ModuleList(resnets),
                "attentions": nn.ModuleList([Transformer(c, context, heads[j], linear) for _ in range(layers + 1)] if i > 0 else []),
                "up": nn.ModuleList([nn.Conv2d(c, c, 3, padding=1)] if i < len(channels) - 1 else []),
            })
            self.up.append(block)
            previous = c
        self.norm_out, self.conv_out = nn.GroupNorm(GROUPS[0], channels[0], eps=1e-5), nn.Conv2d(channels[0], 4, 3, padding=1)

    def forward(self, x, t, context):
        half = self.c0 // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32, device=x.device) / half)
        angles = t.float()[:, None] * freqs[None]
        temb = torch.cat([angles.cos(), angles.sin()], -1).to(x.dtype).expand(x.shape[0], -1)
        temb = self.time2(F.silu(self.time1(temb)))
        h = self.conv_in(x)
        skips = [h]
        for block in self.down:
            for k, resnet in enumerate(block["resnets"]):
                h = resnet(h, temb)
                if len(block["attentions"]):
                    h = block["attentions"][k](h, context)
                skips.append(h)
            for conv in block["down"]:
                h = conv(h)
                skips.append(h)
        h = self.mid[2](self.mid[1](self.mid[0](h, temb), context), temb)
        for block in self.up:
            for k, resnet in enumerate(block["resnets"]):
                h = resnet(torch.cat([h, skips.pop()], 1), temb)
                if len(block["attentions"]):
                    h = block["attentions"][k](h, context)
            for conv in block["up"]:
                h = conv(F.interpolate(h, size=skips[-1].shape[2:], mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


def main():
    spec = json.loads(sys.stdin.readline())
    torch.set_num_threads(spec.get("threads", 0) or torch.get_num_threads())
    torch.manual_seed(0)
    device = torch.device(spec.get("device", "cpu"))
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[spec["dtype"]]
    GROUPS[0] = spec.get("groups", 32)
    unet = UNet(channels=tuple(spec.get("channels", (320, 640, 1280, 1280))), heads=tuple(spec.get("heads", (8, 8, 8, 8))),
                context=spec.get("context", 768), linear=spec.get("linear", False), layers=spec.get("layers", 2)).eval().to(device=device, dtype=dtype)
    batch, size, steps = spec["batch"], spec["latent_size"], spec["steps"]
    latents = torch.randn(batch, 4, size, size).to(device=device, dtype=dtype)
    embeddings = torch.randn(2 * batch, 77, spec.get("context", 768)).to(device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times = []
    with torch.no_grad():
        for step in range(steps + 1):
            start = time.perf_counter()
            t = torch.tensor([999 - 20 * step], device=device)
            noise = unet(torch.cat([latents] * 2), t, embeddings)
            uncond, text = noise.chunk(2)
            noise = uncond + 7.5 * (text - uncond)
            latents = 0.99 * latents - 0.1 * noise
            sync()
            times.append(time.perf_counter() - start)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "parameters": sum(p.numel() for p in unet.parameters()),
                      "seconds_per_step": times[1:]}), flush=True)


if __name__ == "__main__":
    main()
