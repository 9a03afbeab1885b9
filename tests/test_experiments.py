"The scripts in experiments/ run as documented, here on the CPU with stand-ins for srun, the GPU and the device's home"
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest


REPO = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / 'esc50-norm')


def run(cmd, env):
    res = subprocess.run(cmd, cwd=REPO, env={**os.environ, 'MPLBACKEND': 'Agg', **env}, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


@pytest.mark.slow
def test_slurm_array_tasks_split_the_grid_into_one_folder(fake_root, tmp_path):
    out = tmp_path / 'res'
    args = (f"--folds 1 --normalizations none,global,channel --data {fake_root} --partial-data --cache-dir {tmp_path / 'c'} "
            f"--device cpu")
    env = dict(SRUN='', ESC50_NORM=CLI, PRESET='smoke', OUT_DIR=str(out), STUDY_ARGS=args, SLURM_ARRAY_TASK_COUNT='2')
    first = run(['bash', 'experiments/slurm.sbatch'], {**env, 'SLURM_ARRAY_TASK_ID': '1'})
    assert 'smoke: 2 runs to do' in first and 'shard 1/2' in first
    second = run(['bash', 'experiments/slurm.sbatch'], {**env, 'SLURM_ARRAY_TASK_ID': '2'})
    assert 'smoke: 1 run to do' in second
    assert sorted(pd.read_csv(out / 'results.csv').normalization) == ['channel', 'global', 'none']
    assert 'smoke: 0 runs to do' in run(['bash', 'experiments/slurm.sbatch'], {**env, 'SLURM_ARRAY_TASK_ID': '1'})


@pytest.mark.slow
def test_device_script_assembles_the_parts_runs_and_packs_the_results(fake_root, tmp_path):
    home, out = tmp_path / 'home', tmp_path / 'out'
    home.mkdir(); out.mkdir()
    parts = tmp_path / 'parts'
    for k, files in enumerate((sorted((fake_root / 'audio').iterdir())[:10], sorted((fake_root / 'audio').iterdir())[10:]), 1):
        (parts / f"part{k}" / 'audio').mkdir(parents=True)
        for f in files: (parts / f"part{k}" / 'audio' / f.name).write_bytes(f.read_bytes())
    (parts / 'part1' / 'meta').mkdir()
    (parts / 'part1' / 'meta' / 'esc50.csv').write_text((fake_root / 'meta' / 'esc50.csv').read_text())
    env = dict(HOME=str(home), OUT=str(out), DEVICE='cpu', PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    assert '10 clips' in run(['bash', 'experiments/on_device.sh', 'part', str(parts / 'part1')], env)
    assert '20 clips' in run(['bash', 'experiments/on_device.sh', 'part', str(parts / 'part2')], env)
    log = run(['bash', 'experiments/on_device.sh', 'study', 'smoke', '--folds', '1', '--normalizations', 'none,channel',
               '--partial-data'], env)
    assert 'smoke: 2 runs to do' in log and 'report:' in log
    with tarfile.open(out / 'results-smoke.tar.gz') as tar:
        names = tar.getnames()
        assert 'smoke/runs/fold1-channel-seed0.json' in names and 'smoke/report.md' in names
        row = json.load(tar.extractfile('smoke/runs/fold1-channel-seed0.json'))
    assert row['device'].startswith('cpu') and (out / 'study-smoke.log').exists()


def test_prepare_device_refuses_parts_that_with_the_tracked_tree_exceed_what_a_call_carries():
    "Before any download: a PART_MIB that with the tracked tree passes 64 MiB is refused, naming the largest that fits"
    tree = -(-sum((REPO / f).stat().st_size for f in subprocess.run(['git', 'ls-files', '-z'], cwd=REPO, check=True,
             capture_output=True, text=True).stdout.split('\0') if f) // 2 ** 20)
    res = subprocess.run(['bash', 'experiments/prepare_device.sh'], cwd=REPO, env={**os.environ, 'PART_MIB': '60'},
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and not res.stdout
    assert f"parts of 60 MiB and the tracked tree ({tree} MiB) exceed the 64 MiB" in res.stderr
    assert f"set PART_MIB to at most {64 - tree}" in res.stderr


def _alpha_parity():
    import importlib.util
    spec = importlib.util.spec_from_file_location('alpha_parity', REPO / 'experiments' / 'alpha_parity.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def parity_setup(fake_root, tmp_path_factory):
    "A tiny frontends-cpu (bs 4) on the fake collection: its preset, data and the model and batches of fold 1, seed 3"
    from esc50_norm.study.datasets import get_dataset
    from esc50_norm.study.presets import get_preset
    from esc50_norm.study.train import load_study_data
    ds = get_dataset(data=fake_root, full=False)
    preset = get_preset('frontends-cpu', bs=4, epochs=1).for_dataset(ds).resolved('cpu')
    data = load_study_data(preset, ds, tmp_path_factory.mktemp('cache'), device='cpu', progress=False, log=None)
    return preset, data, *_alpha_parity().initial_model(preset, data, 1, 3, 2)


def test_alpha_parity_starts_from_the_network_train_one_starts_from(parity_setup, monkeypatch):
    import torch
    from fastai.learner import Learner
    from esc50_norm.study.presets import Job
    from esc50_norm.study.train import train_one
    preset, data, model, _ = parity_setup
    started = {}
    class Started(Exception): pass
    def capture(self, *args, **kwargs):
        started.update({k: v.clone() for k, v in self.model.state_dict().items()})
        raise Started
    monkeypatch.setattr(Learner, 'fit_one_cycle', capture)
    with pytest.raises(Started): train_one(preset, data, Job(1, 'pcen_learn_gain', 3))
    mine = model.state_dict()
    assert started.keys() == mine.keys() and all(torch.equal(started[k], mine[k]) for k in mine)


def _smooth(m):
    "`m` with its ReLUs as SiLUs and its max pools as average pools, in place: a loss differentiable everywhere"
    from torch import nn
    for name, c in m.named_children():
        if isinstance(c, nn.ReLU): setattr(m, name, nn.SiLU())
        elif isinstance(c, nn.MaxPool2d): setattr(m, name, nn.AvgPool2d(c.kernel_size, c.stride, c.padding))
        else: _smooth(c)
    return m


def test_alpha_parity_gradient_is_the_finite_difference_of_the_loss(parity_setup):
    """The summed gradient of each variant against central differences of the summed loss, in float64 (with smooth
    activations: the ReLUs' and max pools' kinks make central differences of the network as trained erratic)"""
    import copy
    import torch
    import torch.nn.functional as F
    ap = _alpha_parity()
    *_, model, batches = parity_setup
    batches = [(x.as_subclass(torch.Tensor).double(), y.as_subclass(torch.Tensor)) for x, y in batches]
    for name in ap.VARIANTS:
        net = _smooth(ap.variant(model, name).double())
        g = ap.alpha_gradient(net, batches)
        def loss(band, h):
            moved = copy.deepcopy(net)
            with torch.no_grad(): moved[0].alpha[band] += h
            moved.train()
            with torch.no_grad(): return sum(float(F.cross_entropy(moved(x), y)) for x, y in batches)
        for band in (0, 1, 37):
            fd = (loss(band, 1e-5) - loss(band, -1e-5)) / 2e-5
            assert abs(fd - float(g[band])) <= 1e-6 + 1e-5 * abs(fd), (name, band, fd, float(g[band]))
    assert model[1][0][0].stride == (2, 2) and ap.variant(model, 'stride1')[1][0][0].stride == (1, 1)


def test_alpha_parity_counts_the_pairs_where_the_even_band_is_larger(tmp_path):
    import numpy as np
    ap = _alpha_parity()
    rng = np.random.default_rng(0)
    rows, expected = [], {}
    for seed, variant in [(0, 'as_trained'), (1, 'shifted')]:
        g = rng.normal(size=64)
        expected[(seed, variant)] = sum(g[2 * j] > g[2 * j + 1] for j in range(32))
        rows += [dict(seed=seed, variant=variant, band=b, gradient=v) for b, v in reversed(list(enumerate(g)))]
    table = ap.parity_table(pd.DataFrame(rows))
    assert {k: int(v) for k, v in table.even_larger.items()} == expected and set(table.pairs) == {32}
    pd.DataFrame(rows).to_csv(tmp_path / 'gradients.csv', index=False)
    import re
    n = expected[(1, 'shifted')]
    assert re.search(rf"\|\s*1\s*\|\s*shifted\s*\|\s*32\s*\|\s*{n}\s*\|", ap.report(tmp_path / 'gradients.csv'))


def test_the_committed_alpha_parity_page_is_its_gradients_and_the_results_page_quotes_its_counts():
    "parity.md is what `report` makes of the committed gradients.csv; the counts the results page quotes, from pandas"
    import re
    ap, folder = _alpha_parity(), REPO / 'results' / 'alpha-parity'
    assert (folder / 'parity.md').read_text() == ap.report(folder / 'gradients.csv')
    g = pd.read_csv(folder / 'gradients.csv')
    assert len(g) == 5 * 3 * 64 and set(g.variant) == set(ap.VARIANTS)
    wide = g.pivot_table(index=['variant', 'seed'], columns='band', values='gradient')
    counts = pd.Series((wide.iloc[:, 0::2].to_numpy() > wide.iloc[:, 1::2].to_numpy()).sum(1), index=wide.index)
    text = ' '.join((REPO / 'docs' / 'results.md').read_text().split())
    trained = counts['as_trained'].sort_index().tolist()
    assert f"`even_larger` is {', '.join(map(str, trained[:-1]))} and {trained[-1]} of 32 for seeds 0–4" in text
    lo, hi = counts[['stride1', 'shifted']].min(), counts[['stride1', 'shifted']].max()
    assert f"the stride-1 and shifted variants ({lo}–{hi} of 32)" in text
    assert all(5 <= c <= 27 for c in trained)                          # no seed alternates as trained: prediction (1) fails
