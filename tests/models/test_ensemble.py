"""The mean ensemble: its step is the members' mean; per-member input steps each member alone."""

import pytest
import torch

from tests.models.conftest import DIM, TOKENS, gen, operator, perturb
from ups.models.ensemble import MeanEnsemble


def _ensemble() -> MeanEnsemble:
    return MeanEnsemble([perturb(operator(seed), seed + 10) for seed in range(3)])


def test_the_step_is_the_mean_of_the_members_steps():
    ensemble = _ensemble()
    z, cond = torch.randn(5, TOKENS, DIM, generator=gen(1)), torch.full((5, 2), 0.05)
    steps = [member(z, cond) for member in ensemble.members]
    assert not torch.allclose(steps[0], steps[1])  # distinct members, or the test means nothing
    torch.testing.assert_close(ensemble(z, cond), (steps[0] + steps[1] + steps[2]) / 3)


def test_per_member_input_steps_each_member_from_its_own_state():
    ensemble = _ensemble()
    z, cond = torch.randn(5, 3, TOKENS, DIM, generator=gen(2)), torch.full((5, 2), 0.05)
    out = ensemble(z, cond)
    assert out.shape == (5, 3, TOKENS, DIM)
    for m, member in enumerate(ensemble.members):
        torch.testing.assert_close(out[:, m], member(z[:, m], cond))


def test_per_member_input_of_the_wrong_width_and_a_lone_member_are_refused():
    with pytest.raises(ValueError, match=r"\(B, 3, T, D\)"):
        _ensemble()(torch.zeros(5, 2, TOKENS, DIM), torch.zeros(5, 2))
    with pytest.raises(ValueError, match="at least 2 members"):
        MeanEnsemble([operator()])
