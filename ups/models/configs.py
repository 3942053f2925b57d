"""The model sections of the config: sizes and modes of every network, without torch.

:mod:`ups.schema` nests these in the stage sections, and the model modules build from them, so
reading a config file never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from ups.checks import require

# fixed: the normaliser's one scale for every sample; per_sample: each sample's own; capped: the
# normaliser's from AMPLITUDE_CEILING up, smaller fields magnified to that size.
AMPLITUDES = ("fixed", "per_sample", "capped")


def check_amplitude(value: str) -> None:
    require(value in AMPLITUDES, "amplitude", f"must be one of {AMPLITUDES}, got {value!r}")


POSITIONS = ("absolute", "relative")

# edm: Karras et al.'s log-normal training noise and probability-flow sampler; refiner:
# PDE-Refiner's few fixed noise levels (Lippe et al. 2023; docs/design.md, "Stages").
SCHEDULES = ("edm", "refiner")


def check_transformer_size(
    width: int, depth: int, heads: int, mlp_ratio: int, position: str = "absolute"
) -> None:
    """Range checks shared by every config that sizes a :class:`ConditionedTransformer`."""
    require(position in POSITIONS, "position", f"must be one of {POSITIONS}, got {position!r}")
    require(width >= 1, "width", f"must be >= 1, got {width}")
    require(depth >= 1, "depth", f"must be >= 1, got {depth}")
    require(heads >= 1, "heads", f"must be >= 1, got {heads}")
    require(width % heads == 0, "width", f"must be divisible by heads={heads}, got {width}")
    require(mlp_ratio >= 1, "mlp_ratio", f"must be >= 1, got {mlp_ratio}")


KINDS = ("conv", "patch")
# Kinds whose decoder is linear in the latent, so a step can be held to its input's mass
# (operator.conserve_mass: ups/models/conservation.py).
LINEAR_KINDS = ("patch",)
# random: the patch basis starts from the seed's draw; dct: from the lowest-frequency rows of the
# orthonormal DCT-II, the same for every seed (docs/design.md, "Stages").
PATCH_INITS = ("random", "dct")


@dataclass(frozen=True)
class AutoencoderConfig:
    """Latent shape and conv width. Default latent 16 x 16 = 256 numbers >= 128 grid points.

    ``kind``: ``conv`` (this module) or ``patch`` (:mod:`ups.models.patch_autoencoder`, which
    has no convolutions and ignores ``channels``, ``kernel`` and ``blocks_per_level``).
    ``init``: where the patch basis starts (``PATCH_INITS``); ``dct`` only with ``patch``.
    """

    kind: str = "conv"
    latent_tokens: int = 16
    latent_dim: int = 16
    channels: int = 32
    kernel: int = 5
    blocks_per_level: int = 1
    init: str = "random"

    def validate(self) -> None:
        require(self.kind in KINDS, "kind", f"must be one of {KINDS}, got {self.kind!r}")
        require(
            self.init in PATCH_INITS, "init", f"must be one of {PATCH_INITS}, got {self.init!r}"
        )
        require(
            self.init == "random" or self.kind == "patch",
            "init",
            f"{self.init!r} is a patch basis; kind {self.kind!r} has none (use 'random')",
        )
        require(self.latent_tokens >= 1, "latent_tokens", f"must be >= 1, got {self.latent_tokens}")
        require(self.latent_dim >= 1, "latent_dim", f"must be >= 1, got {self.latent_dim}")
        require(self.channels >= 1, "channels", f"must be >= 1, got {self.channels}")
        require(
            self.kernel >= 1 and self.kernel % 2 == 1,
            "kernel",
            f"must be odd and >= 1 (same-length circular conv), got {self.kernel}",
        )
        require(
            self.blocks_per_level >= 0,
            "blocks_per_level",
            f"must be >= 0, got {self.blocks_per_level}",
        )


@dataclass(frozen=True)
class OperatorConfig:
    """Size of the latent operator's transformer."""

    width: int = 64
    depth: int = 4
    heads: int = 4
    mlp_ratio: int = 2
    # absolute: a learned embedding per token; relative: a learned attention bias per periodic
    # token offset, so the operator commutes with cyclic token shifts (periodic translations).
    position: str = "absolute"
    # fixed: one scale for every sample (the normaliser's); per_sample: each step relative to
    # the sample's own amplitude (module docstring); capped: that, only below AMPLITUDE_CEILING
    # (ups/models/amplitude.py).
    amplitude: str = "fixed"

    def validate(self) -> None:
        check_transformer_size(self.width, self.depth, self.heads, self.mlp_ratio, self.position)
        check_amplitude(self.amplitude)


@dataclass(frozen=True)
class DiffusionConfig:
    """Denoiser size and noise schedule; sigmas are multiples of sigma_data.

    ``schedule: edm`` trains on ln(sigma / sigma_data) ~ N(p_mean, p_std^2) and samples with
    ``sample_steps`` Heun steps from noise at sigma_max; ``schedule: refiner`` trains and refines
    on ``sample_steps`` levels spaced geometrically from sigma_max down to sigma_min, starting
    from the operator's step (``p_mean``, ``p_std`` and ``rho`` unused).
    """

    width: int = 64
    depth: int = 4
    heads: int = 4
    mlp_ratio: int = 2
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    rho: float = 7.0
    p_mean: float = -1.2  # training noise: ln(sigma / sigma_data) ~ N(p_mean, p_std^2)
    p_std: float = 1.2
    sample_steps: int = 18
    # fixed: residuals in the normaliser's units; per_sample: in units of zhat's amplitude;
    # capped: in those only below AMPLITUDE_CEILING (ups/models/amplitude.py)
    amplitude: str = "fixed"
    # True: the denoiser also sees the operator's step ``op(z) - z``, so the residual is
    # modelled given the previous state as well as the prediction (docs/design.md, "Stages")
    previous_state: bool = False
    schedule: str = "edm"

    def validate(self) -> None:
        check_transformer_size(self.width, self.depth, self.heads, self.mlp_ratio)
        check_amplitude(self.amplitude)
        require(
            self.schedule in SCHEDULES,
            "schedule",
            f"must be one of {SCHEDULES}, got {self.schedule!r}",
        )
        require(self.sigma_min > 0, "sigma_min", f"must be > 0, got {self.sigma_min}")
        require(
            self.sigma_max > self.sigma_min,
            "sigma_max",
            f"must be > sigma_min={self.sigma_min}, got {self.sigma_max}",
        )
        require(self.rho > 0, "rho", f"must be > 0, got {self.rho}")
        require(self.p_std > 0, "p_std", f"must be > 0, got {self.p_std}")
        require(self.sample_steps >= 1, "sample_steps", f"must be >= 1, got {self.sample_steps}")


@dataclass(frozen=True)
class FNOConfig:
    """Size of the FNO: kept Fourier modes, channel width and number of Fourier layers."""

    modes: int = 16
    width: int = 32
    depth: int = 4

    def validate(self) -> None:
        require(self.modes >= 1, "modes", f"must be >= 1, got {self.modes}")
        require(self.width >= 1, "width", f"must be >= 1, got {self.width}")
        require(self.depth >= 1, "depth", f"must be >= 1, got {self.depth}")
