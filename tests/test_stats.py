"RunningStats against torch.var_mean over the concatenated data, and the stats file"
import json

import pytest
import torch
from hypothesis import given, settings, strategies as st

from esc50_norm import RunningStats, StatsFileError, accumulate, load_stats, save_stats


def reference(batches, axes):
    x = torch.cat(batches).double()
    var, mean = torch.var_mean(x, dim=axes, keepdim=True, correction=0)
    return mean, var


def close(a, b, rel=1e-9): return torch.allclose(a, b, rtol=rel, atol=rel * max(1.0, b.abs().max().item()))


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(1, 7), min_size=1, max_size=6),
       extra=st.sets(st.sampled_from([1, 2, 3])), scale=st.floats(1e-3, 1e3), shift=st.floats(-1e3, 1e3), seed=st.integers(0, 2**16))
def test_streaming_equals_var_mean_over_unequal_batches(sizes, extra, scale, shift, seed):
    g = torch.Generator().manual_seed(seed)
    batches = [torch.randn(n, 2, 3, 4, generator=g) * scale + shift for n in sizes]
    axes = (0, *sorted(extra))
    s = RunningStats(axes)
    for b in batches: s.update(b)
    mean, var = reference(batches, axes)
    assert s.n == sum(b.numel() for b in batches) // mean.numel()
    assert close(s.mean, mean) and close(s.var(), var)
    n = s.n
    assert close(s.var(correction=1), var * n / max(n - 1, 1))


def test_single_element_and_constant_data():
    s = RunningStats((0,)).update(torch.tensor([[3.5]]))
    assert s.n == 1 and s.mean.item() == 3.5 and s.var().item() == 0
    c = RunningStats((0, 1))
    for n in (1, 5, 2): c.update(torch.full((n, 3), 7.25))
    assert c.mean.item() == 7.25 and c.var().item() == 0 and c.std().item() == 0


def test_merging_halves_equals_one_pass_and_empty_merges_are_neutral():
    x = torch.randn(37, 1, 5, 6) * 10 + 3
    whole = RunningStats((0, 1, 3)).update(x)
    a, b = RunningStats((0, 1, 3)).update(x[:11]), RunningStats((0, 1, 3))
    for chunk in x[11:].split(9): b.update(chunk)
    merged = a.merge(b)
    assert merged.n == whole.n and close(merged.mean, whole.mean) and close(merged.var(), whole.var())
    assert RunningStats((0, 1, 3)).merge(whole).n == whole.n
    assert close(whole.merge(RunningStats((0, 1, 3))).mean, merged.mean)


def test_float32_input_accumulates_in_float64():
    x = torch.full((1000, 10), 1e4, dtype=torch.float32) + torch.arange(10.)
    s = RunningStats((0,))
    for b in x.split(7): s.update(b)
    assert s.mean.dtype == torch.float64 and close(s.mean.flatten(), 1e4 + torch.arange(10.).double())


def test_bad_axes_and_shapes_are_named():
    with pytest.raises(ValueError, match=r"axes \(0, 4\) do not fit a tensor of shape \(2, 3\)"): RunningStats((0, 4)).update(torch.zeros(2, 3))
    s = RunningStats((0,)).update(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"\(1, 4\) does not match accumulated shape \(1, 3\)"): s.update(torch.zeros(2, 4))
    with pytest.raises(ValueError, match='axes'): s.merge(RunningStats((0, 1)))
    with pytest.raises(ValueError, match='empty'): RunningStats((0,)).mean


def test_accumulate_takes_the_first_fraction_of_batches():
    batches = [torch.full((2, 1), float(i)) for i in range(10)]
    s = accumulate(iter(batches), (0, 1), frac=0.3, n_batches=10)
    assert s.n == 6 and s.mean.item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match='frac'): accumulate(batches, (0,), frac=0)


def test_stats_file_round_trip(tmp_path):
    mean, std = torch.randn(1, 1, 5, 1).double(), torch.rand(1, 1, 5, 1).double() + 0.1
    p = save_stats(tmp_path / 's.json', mean, std, mode='channel', count=12)
    d = load_stats(p, shape=(1, 1, 5, 1))
    assert torch.equal(d['mean'], mean) and torch.equal(d['std'], std) and d['mode'] == 'channel' and d['count'] == 12
    assert json.loads(p.read_text())['shape'] == [1, 1, 5, 1]


def test_stats_file_errors_name_the_file_and_shapes(tmp_path):
    p = save_stats(tmp_path / 's.json', torch.zeros(1, 1, 5, 1), torch.ones(1, 1, 5, 1))
    with pytest.raises(StatsFileError, match=r"shape \(1, 1, 5, 1\), but this data needs \(1, 1, 201, 1\)"): load_stats(p, shape=(1, 1, 201, 1))
    with pytest.raises(StatsFileError, match='nope.json does not exist'): load_stats(tmp_path / 'nope.json')
    (tmp_path / 'bad.json').write_text('{not json')
    with pytest.raises(StatsFileError, match='bad.json is not readable JSON'): load_stats(tmp_path / 'bad.json')
    (tmp_path / 'other.json').write_text('{"format": "something else"}')
    with pytest.raises(StatsFileError, match="other.json has format 'something else'"): load_stats(tmp_path / 'other.json')
