"RunningStats and RunningExtrema against direct computations over the concatenated data, and the stats file"
import json
import multiprocessing as mp

import pytest
import torch
from hypothesis import given, settings, strategies as st

from esc50_norm import RunningExtrema, RunningStats, StatsFileError, accumulate, load_stats, save_stats


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
    into_empty = RunningStats((0, 1, 3)).merge(whole)
    assert into_empty.n == whole.n and close(into_empty.mean, whole.mean) and close(into_empty.var(), whole.var())
    assert close(whole.merge(RunningStats((0, 1, 3))).mean, merged.mean)


def test_float32_input_accumulates_in_float64():
    "Values near 1e4 with unit spread: float32 sums lose the variance's digits, float64 keeps them to 1e-9"
    x = 1e4 + torch.randn(1000, 10, generator=torch.Generator().manual_seed(0))
    assert x.dtype == torch.float32
    s = RunningStats((0,))
    for b in x.split(7): s.update(b)
    var, mean = torch.var_mean(x.double(), 0, correction=0)
    assert s.mean.dtype == torch.float64
    assert torch.allclose(s.mean.flatten(), mean, rtol=1e-12) and torch.allclose(s.var().flatten(), var, rtol=1e-9)


def test_bad_axes_and_shapes_are_named():
    with pytest.raises(ValueError, match=r"axes \(0, 4\) do not fit a tensor of shape \(2, 3\)"): RunningStats((0, 4)).update(torch.zeros(2, 3))
    s = RunningStats((0,)).update(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"\(1, 4\) does not match accumulated shape \(1, 3\)"): s.update(torch.zeros(2, 4))
    with pytest.raises(ValueError, match='axes'): s.merge(RunningStats((0, 1)))
    with pytest.raises(ValueError, match='empty'): RunningStats((0,)).mean


def test_accumulate_streams_every_batch_into_an_accumulator_or_new_axes():
    batches = [torch.full((2, 1), float(i)) for i in range(10)]
    s = accumulate(iter(batches), (0, 1))
    assert s.n == 20 and s.mean.item() == pytest.approx(4.5) and s.var().item() == pytest.approx(8.25)
    e = RunningExtrema()
    assert accumulate(batches, e) is e and e.n == 20 and e.max.item() == 9


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 6), min_size=1, max_size=6), scale=st.floats(1e-2, 1e3), shift=st.floats(-1e3, 1e3),
       seed=st.integers(0, 2**16))
def test_extrema_streamed_over_batches_equal_the_direct_computation(sizes, scale, shift, seed):
    g = torch.Generator().manual_seed(seed)
    batches = [torch.randn(n, 1, 3, 5, generator=g) * scale + shift for n in sizes]
    e = accumulate(iter(batches), RunningExtrema())
    x = torch.cat(batches).double().numpy()
    mins, maxs = [c.min() for c in x], [c.max() for c in x]
    assert e.n == len(x) and e.mean_min.dtype == torch.float64
    assert e.mean_min.item() == pytest.approx(sum(mins) / len(x), rel=1e-12, abs=1e-9)
    assert e.mean_max.item() == pytest.approx(sum(maxs) / len(x), rel=1e-12, abs=1e-9)
    assert e.min.item() == min(mins) and e.max.item() == max(maxs)


def test_extrema_merge_equals_one_pass_and_empty_ones_are_refused_or_neutral():
    x = torch.randn(23, 1, 4, 6) * 10
    x[5] += 1000                                            # one outlier clip
    whole = RunningExtrema().update(x)
    a, b = RunningExtrema().update(x[:8]), RunningExtrema()
    for chunk in x[8:].split(4): b.update(chunk)
    merged = a.merge(b).merge(RunningExtrema())
    assert merged.n == whole.n == 23 and merged.max == whole.max == x.max().double()
    assert close(merged.mean_min, whole.mean_min) and close(merged.mean_max, whole.mean_max)
    assert whole.mean_max < whole.max - 900                 # the mean of the clip maxima barely moves with the outlier
    assert RunningExtrema().merge(whole).n == 23
    with pytest.raises(ValueError, match='empty'): RunningExtrema().mean_min
    with pytest.raises(ValueError, match=r'a batch of clips \[bs, ...\], got shape \(5,\)'): RunningExtrema().update(torch.zeros(5))


def test_stats_file_round_trip(tmp_path):
    mean, std = torch.randn(1, 1, 5, 1).double(), torch.rand(1, 1, 5, 1).double() + 0.1
    p = save_stats(tmp_path / 's.json', mean, std, mode='channel', n_per_bin=12)
    d = load_stats(p, shape=(1, 1, 5, 1))
    assert torch.equal(d['mean'], mean) and torch.equal(d['std'], std)
    assert d['mode'] == 'channel' and d['n_per_bin'] == 12
    assert json.loads(p.read_text())['shape'] == [1, 1, 5, 1]


def test_stats_file_errors_name_the_file_and_shapes(tmp_path):
    p = save_stats(tmp_path / 's.json', torch.zeros(1, 1, 5, 1), torch.ones(1, 1, 5, 1))
    with pytest.raises(StatsFileError, match=r"shape \(1, 1, 5, 1\), but this data needs \(1, 1, 201, 1\)"): load_stats(p, shape=(1, 1, 201, 1))
    with pytest.raises(StatsFileError, match='nope.json does not exist'): load_stats(tmp_path / 'nope.json')
    (tmp_path / 'bad.json').write_text('{not json')
    with pytest.raises(StatsFileError, match='bad.json is not readable JSON'): load_stats(tmp_path / 'bad.json')
    (tmp_path / 'other.json').write_text('{"format": "something else"}')
    with pytest.raises(StatsFileError, match="other.json has format 'something else'"): load_stats(tmp_path / 'other.json')


def test_stats_file_of_any_arrays_and_the_mode_check(tmp_path):
    lo, hi = torch.tensor([[[[-80.5]]]], dtype=torch.float64), torch.tensor([[[[3.25]]]], dtype=torch.float64)
    p = save_stats(tmp_path / 'mm.json', lo=lo, hi=hi, mode='minmax', mean_clip_extremes=True, n_clips=4)
    raw = json.loads(p.read_text())
    assert raw['arrays'] == ['lo', 'hi'] and raw['lo'] == [-80.5] and 'mean' not in raw
    assert raw['mean_clip_extremes'] is True
    d = load_stats(p, mode='minmax')
    assert torch.equal(d['lo'], lo) and torch.equal(d['hi'], hi) and d['n_clips'] == 4
    with pytest.raises(StatsFileError, match=r"mm.json holds 'minmax' stats, but they are loaded for mode 'global'"): load_stats(p, mode='global')
    with pytest.raises(ValueError, match='one shape'): save_stats(tmp_path / 'x.json', lo=lo, hi=torch.zeros(2))
    (tmp_path / 'old.json').write_text(json.dumps(dict(format='esc50_norm.stats/1', shape=[1, 1, 2, 1], mean=[1, 2], std=[3, 4])))
    old = load_stats(tmp_path / 'old.json', mode='channel')           # first-version file: mean/std, no mode, no arrays
    assert old['mode'] == 'channel' and old['arrays'] == ['mean', 'std'] and old['std'].flatten().tolist() == [3, 4]
    (tmp_path / 'short.json').write_text(json.dumps(dict(format='esc50_norm.stats/1', shape=[1, 1, 1, 1], arrays=['lo', 'hi'], lo=[1.0])))
    with pytest.raises(StatsFileError, match='short.json is malformed'): load_stats(tmp_path / 'short.json')


def _save_many(path, seed, n, start, errors):
    "Save `n` stats files to `path` (a writer process); count the saves that failed"
    g = torch.Generator().manual_seed(seed)
    start.wait()
    for _ in range(n):
        mean, std = torch.randn(1, 1, 64, 1, generator=g), torch.rand(1, 1, 64, 1, generator=g) + 1
        try: save_stats(path, mean, std, mode='channel', n_per_bin=seed)
        except Exception: errors.value += 1


def test_two_writers_and_a_reader_of_one_stats_file_never_fail(tmp_path):
    "Saves are atomic: concurrent writers of one file do not collide, and a reader only ever sees whole files"
    ctx = mp.get_context('fork')
    path, start = tmp_path / 'stats.json', ctx.Event()
    errors = [ctx.Value('i', 0) for _ in range(2)]
    writers = [ctx.Process(target=_save_many, args=(path, seed, 300, start, errors[seed])) for seed in range(2)]
    for w in writers: w.start()
    start.set()
    reads, bad = 0, []
    while any(w.is_alive() for w in writers):
        if not path.exists(): continue
        try: d = load_stats(path, shape=(1, 1, 64, 1), mode='channel')
        except StatsFileError as e: bad.append(str(e)); continue
        reads += 1
        assert d['n_per_bin'] in (0, 1) and bool((d['std'] >= 1).all())
    for w in writers: w.join()
    assert [e.value for e in errors] == [0, 0] and bad == [] and reads > 10
    assert load_stats(path)['n_per_bin'] in (0, 1)
    assert not [p.name for p in tmp_path.iterdir() if p != path]                                   # no temporary file left


def test_stats_that_are_not_finite_are_not_saved(tmp_path):
    with pytest.raises(ValueError, match=r"stats \['std'\] hold NaN or inf: not saved to .*s\.json"):
        save_stats(tmp_path / 's.json', torch.zeros(1, 1, 2, 1), torch.tensor([1., float('nan')]).view(1, 1, 2, 1))
    assert not (tmp_path / 's.json').exists()
