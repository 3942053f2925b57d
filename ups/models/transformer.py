"""The conditioned transformer backbone shared by the operator and the diffusion denoiser.

Tokens (B, T, in_dim) and a conditioning vector c (B, W) -> (B, T, out_dim). Conditioning enters
every block through adaptive layer norm with zero-initialised modulation and gates (DiT's
adaLN-Zero), and the output head is zero too: a fresh backbone outputs exactly zero, so a
residual model built on it starts as the identity (operator) or as its skip path (denoiser).
Position is explicit (attention alone is permutation-equivariant), in one of two ways:
``absolute``, a learned embedding added per token, or ``relative``, a learned attention bias per
head and periodic token offset, which keeps the backbone equivariant to cyclic token shifts.
"""

from __future__ import annotations

import torch
from torch import nn

from ups.models.configs import check_transformer_size
from ups.models.layers import (
    PositionalEmbedding,
    RelativePositionBias,
    ZeroLinear,
    modulate,
    silu_chunks,
)


class SelfAttention(nn.Module):
    """Multi-head self-attention over tokens, (B, T, W) -> (B, T, W).

    Written out (no fused kernel): T is small, and the plain math is deterministic on every device.
    With ``tokens`` given, a :class:`RelativePositionBias` over that many tokens joins the logits.
    """

    def __init__(self, width: int, heads: int, tokens: int | None = None):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.position = None if tokens is None else RelativePositionBias(tokens, heads)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        B, T, W = h.shape
        qkv = self.qkv(h).view(B, T, 3, self.heads, W // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each (B, H, T, W/H)
        att = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)  # (B, H, T, T)
        if self.position is not None:
            att = att + self.position()  # (H, T, T), broadcast over B
        y = att.softmax(dim=-1) @ v  # (B, H, T, W/H)
        return self.proj(y.transpose(1, 2).reshape(B, T, W))


class ConditionedBlock(nn.Module):
    """Pre-norm transformer block with adaLN-Zero conditioning: (B, T, W), (B, W) -> (B, T, W)."""

    def __init__(self, width: int, heads: int, mlp_ratio: int, relative_tokens: int | None = None):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False)
        self.attn = SelfAttention(width, heads, relative_tokens)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False)
        self.mlp = nn.Sequential(
            nn.Linear(width, mlp_ratio * width), nn.GELU(), nn.Linear(mlp_ratio * width, width)
        )
        # shift, scale, gate for attention and for the MLP; zero => the block is the identity.
        self.modulation = ZeroLinear(width, 6 * width)

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = silu_chunks(self.modulation, c, 6)
        h = h + gate1 * self.attn(modulate(self.norm1(h), shift1, scale1))
        return h + gate2 * self.mlp(modulate(self.norm2(h), shift2, scale2))


class ConditionedTransformer(nn.Module):
    """Tokens (B, T, in_dim) conditioned on c (B, W) -> (B, T, out_dim); exactly zero at init.

    Build it inside ``torch.device("meta")`` and let the owning model :func:`materialise` it.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        tokens: int,
        width: int,
        depth: int,
        heads: int,
        mlp_ratio: int,
        position: str = "absolute",
    ):
        super().__init__()
        check_transformer_size(width, depth, heads, mlp_ratio, position)
        self.tokens = tokens
        self.embed = nn.Linear(in_dim, width)
        relative = tokens if position == "relative" else None
        self.position = PositionalEmbedding(tokens, width) if relative is None else None
        self.blocks = nn.ModuleList(
            ConditionedBlock(width, heads, mlp_ratio, relative) for _ in range(depth)
        )
        self.final_norm = nn.LayerNorm(width, elementwise_affine=False)
        self.final_modulation = ZeroLinear(width, 2 * width)
        self.head = ZeroLinear(width, out_dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.tokens:
            raise ValueError(f"expected {self.tokens} tokens, got shape {tuple(x.shape)}")
        h = self.embed(x)  # (B, T, W)
        if self.position is not None:
            h = self.position(h)
        for block in self.blocks:
            h = block(h, c)
        shift, scale = silu_chunks(self.final_modulation, c, 2)
        return self.head(modulate(self.final_norm(h), shift, scale))  # (B, T, out_dim)
