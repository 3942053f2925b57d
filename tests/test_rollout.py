import torch
from torch import nn

from ups.rollout import decode_frames, latent_rollout, rollout


class Scale(nn.Module):
    """A step that multiplies the state by ``factor`` and adds dt (cond[:, 0])."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, z, cond):
        return self.factor * z + cond[:, 0].view(-1, 1, 1)


class Reshape(nn.Module):
    """(B, X) <-> (B, X // 2, 2) tokens, doubled on the way in."""

    def encode(self, u):
        return 2 * u.unflatten(1, (-1, 2))

    def decode(self, z):
        return z.flatten(1) / 2


COND = torch.tensor([[0.5, 0.01], [0.0, 0.01]])


def test_latent_rollout_feeds_each_step_its_own_output():
    z0 = torch.ones(2, 3, 2)
    out = latent_rollout(Scale(2.0), z0, COND, steps=3)
    assert out.shape == (2, 3, 3, 2)
    # Trajectory 0 (dt 0.5): 1 -> 2.5 -> 5.5 -> 11.5; trajectory 1 (dt 0): 1 -> 2 -> 4 -> 8.
    assert out[0, :, 0, 0].tolist() == [2.5, 5.5, 11.5]
    assert out[1, :, 0, 0].tolist() == [2.0, 4.0, 8.0]


def test_the_corrector_adds_to_every_step_and_sees_the_operator_step_and_its_state():
    seen, states = [], []

    def corrector(zhat, cond, z):
        seen.append(zhat[1, 0, 0].item())
        states.append(z[1, 0, 0].item())
        return torch.full_like(zhat, 1.0)

    out = latent_rollout(Scale(2.0), torch.ones(2, 1, 2), COND, 2, corrector)
    assert seen == [2.0, 6.0]  # 2*1, then 2*(2+1)
    assert states == [1.0, 3.0]  # the corrected state each step starts from
    assert out[1, :, 0, 0].tolist() == [3.0, 7.0]


def test_rollout_encodes_steps_and_decodes_to_the_grid():
    u0 = torch.arange(4.0).repeat(2, 1)  # (B=2, X=4)
    pred = rollout(Reshape(), Scale(1.0), u0, COND, steps=2)
    assert pred.shape == (2, 2, 4)
    # Latents gain dt each step, the grid dt / 2: trajectory 0 moves by 0.25 per step.
    assert torch.allclose(pred[0, 1], u0[0] + 0.5) and torch.equal(pred[1, 1], u0[1])
    assert torch.equal(decode_frames(Reshape(), torch.ones(2, 3, 2, 2)), torch.full((2, 3, 4), 0.5))
