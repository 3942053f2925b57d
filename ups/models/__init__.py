"""Neural modules of the ups pipeline: plain ``torch.nn.Module`` classes, float32.

- :mod:`ups.models.configs`: the model sections of the config (no torch).
- :mod:`ups.models.autoencoder`: grid ``u`` (B, X) <-> latent tokens ``z`` (B, T, D).
- :mod:`ups.models.transformer`: the adaLN-conditioned transformer backbone, written once.
- :mod:`ups.models.operator`: latent time stepper ``z_next = z + F(z, cond)``.
- :mod:`ups.models.diffusion`: EDM denoiser of the residual ``r = z_next - op(z)``, loss, sampler.
- :mod:`ups.models.consistency`: consistency-distilled student of that denoiser (1-2 steps).

Every model takes an explicit ``torch.Generator`` for its initial weights and every random draw;
the global RNG is never read. ``cond`` is always (B, 2) = physical (dt, nu) per sample.
"""
