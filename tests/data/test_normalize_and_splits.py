import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ups.data.normalize import Normalizer
from ups.data.splits import SPLITS, check_disjoint, initial_condition_hash, split_indices

samples = arrays(np.float64, (4, 3, 8), elements=st.floats(-5, 5, allow_nan=False))


@given(samples.filter(lambda u: np.std(u) > 1e-3))
def test_normalizer_round_trips_and_standardises(u):
    norm = Normalizer.fit(u)
    z = norm.transform(u)
    assert abs(np.mean(z)) < 1e-9 and abs(np.std(z) - 1) < 1e-9
    np.testing.assert_allclose(norm.inverse(z), u, atol=1e-9)
    assert Normalizer.from_dict(norm.to_dict()) == norm


def test_normalizer_works_on_tensors_and_refuses_constant_data():
    norm = Normalizer(mean=1.0, std=2.0)
    assert torch.equal(norm.transform(torch.tensor([3.0])), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="std is 0"):
        Normalizer.fit(np.ones((3, 4)))


def test_split_indices_are_disjoint_complete_and_seeded():
    counts = {"train": 20, "val": 5, "test": 7}
    index = split_indices(np.random.default_rng(0), counts)
    merged = np.concatenate([index[name] for name in SPLITS])
    assert sorted(merged.tolist()) == list(range(32))
    assert {name: len(index[name]) for name in SPLITS} == counts
    again = split_indices(np.random.default_rng(0), counts)
    other = split_indices(np.random.default_rng(1), counts)
    assert all(np.array_equal(index[n], again[n]) for n in SPLITS)
    assert not np.array_equal(index["test"], other["test"])


def test_duplicate_initial_condition_is_caught_within_and_across_splits():
    a, b = initial_condition_hash(np.zeros(4)), initial_condition_hash(np.ones(4))
    assert a != b and a == initial_condition_hash(np.zeros(4, dtype=np.float32))
    check_disjoint({"train": [a], "val": [b], "test": []})
    with pytest.raises(ValueError, match="both train and test"):
        check_disjoint({"train": [a], "val": [b], "test": [a]})
    with pytest.raises(ValueError, match="both train and train"):
        check_disjoint({"train": [a, a], "val": [], "test": []})
