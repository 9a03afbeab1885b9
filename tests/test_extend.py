"Extending the library from outside the package, as a user would: a mode and a dataset kind of tests/user_extensions.py"
import json
import warnings

import pytest
import torch
from fastai.data.all import DataLoader

from esc50_norm import MODES, AudioSpectrogram, SpecNormalize
from esc50_norm.normalize import Mode
from esc50_norm.stats import RunningStats
from esc50_norm.study import KINDS, get_dataset
from esc50_norm.study.datasets import DatasetError
from esc50_norm.study.normalizations import NORMALIZATIONS, Normalization
from fake_collections import CLASSES, make_folders
from user_extensions import LabelsJSON, Scaled, make_labels_json


@pytest.fixture
def registered(monkeypatch):
    "The user's mode and kind, one entry each (`MODES['scaled'] = Scaled()`), and a study normalization using the mode"
    monkeypatch.setitem(MODES, 'scaled', Scaled())
    monkeypatch.setitem(KINDS, 'labelsjson', LabelsJSON)
    monkeypatch.setitem(NORMALIZATIONS, 'scaled', Normalization(wave=True, mode='scaled'))
    return MODES, KINDS


def spectrograms(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return AudioSpectrogram(torch.randn(n, 1, 5, 7, generator=g) * 10 - 40)


def test_a_users_mode_with_an_option_learns_normalizes_saves_and_loads(registered, tmp_path):
    x = spectrograms()
    norm = SpecNormalize('scaled', k=3.0)
    norm.setups(DataLoader(list(x), bs=3))
    a = x.as_subclass(torch.Tensor).double()
    assert norm.stats['mean'].item() == pytest.approx(a.mean().item()) and norm.n_per_bin == a.numel()
    assert torch.allclose(norm(x).double(), (a - a.mean()) / (3 * a.std(correction=0)), atol=1e-5)
    assert torch.allclose(norm.decode(norm(x)), x, atol=1e-4)
    assert norm(x).normalized == 'multiples of k standard deviations'
    d = json.loads(norm.save(tmp_path / 's.json').read_text())
    assert d['mode'] == 'scaled' and d['k'] == 3.0 and d['n_per_bin'] == a.numel()
    back = SpecNormalize.from_file(tmp_path / 's.json')                    # mode and option come from the file
    assert back.k == 3.0 and torch.equal(back(x), norm(x)) and 'k=3.0' in repr(back)
    assert SpecNormalize('scaled').k == 2.0                                   # the mode's default: AST's 2 std
    given = SpecNormalize('scaled', stats=dict(mean=-4.27, std=4.57))        # AST's AudioSet constants
    assert torch.allclose(given(x), (x - -4.27) / (2 * 4.57))
    with pytest.raises(ValueError, match=r"'scaled' normalization has no option 'q' \(its options: k\)"):
        SpecNormalize('scaled', q=1)
    with pytest.raises(ValueError, match="was saved with k=3.0, but this SpecNormalize has k=2.0"):
        SpecNormalize.from_file(tmp_path / 's.json', k=2.0)


class Centered(Mode):
    "The least a learned mode defines, subclassing `Mode`: its stats, how they are learned, the shift and scale"
    keys = ('mean',)
    def accumulator(self) -> RunningStats: return RunningStats((0, 1, 3))
    def arrays(self, acc: RunningStats, eps: float) -> dict: return dict(mean=acc.mean)
    def shift_scale(self, x, stats: dict, eps: float) -> tuple: return stats['mean'], torch.ones_like(stats['mean'])


def test_a_mode_that_subclasses_mode_gets_defaults_for_the_rest(monkeypatch, tmp_path):
    from esc50_norm.study.plugins import _misfit
    monkeypatch.setitem(MODES, 'centered', Centered())
    assert _misfit('MODES', 'centered', MODES['centered']) is None              # what a plugin registering it passes
    x = spectrograms()
    norm = SpecNormalize('centered')
    norm.setups(DataLoader(list(x), bs=3))
    a = x.as_subclass(torch.Tensor).double()
    assert torch.allclose(norm(x).double(), a - a.mean((0, 1, 3), keepdim=True), atol=1e-4)
    assert norm(x).normalized == 'normalized units' and norm.n is None and norm.stats['mean'].shape == (1, 1, 5, 1)
    back = SpecNormalize.from_file(norm.save(tmp_path / 'c.json'))
    assert torch.equal(back(x), norm(x)) and torch.allclose(back.decode(back(x)), x, atol=1e-4)
    assert torch.allclose(SpecNormalize('centered', stats=dict(mean=-40.0))(x), x + 40)      # one value, or per bin
    with pytest.raises(ValueError, match=r"centered stats need shape \(1, 1, 'F', 1\)"):
        SpecNormalize('centered', stats=dict(mean=torch.zeros(2, 3)))


def test_a_users_kind_by_name_by_path_and_on_the_command_line(registered, tmp_path):
    root = make_labels_json(tmp_path / 'mine')
    for spec in (f"labelsjson:{root}", str(root)):                 # a bare path: claimed by the kind, not by folders
        ds = get_dataset(spec)
        assert isinstance(ds, LabelsJSON) and ds.folds == (1, 2) and ds.classes == tuple(sorted(CLASSES))
    assert get_dataset(f"folders:{make_folders(tmp_path / 'tree', dict(a=2, b=2))}", k_folds=2).kind == 'folders'
    with pytest.raises(DatasetError, match=r"kinds: esc50, esc10, urbansound8k, csv, folders, labelsjson"):
        get_dataset('mp3:/x')


def test_two_kinds_that_recognise_one_path_are_named(registered, tmp_path, monkeypatch):
    class AlsoLabels(LabelsJSON): kind = 'also'
    monkeypatch.setitem(KINDS, 'also', AlsoLabels)
    root = make_labels_json(tmp_path / 'mine')
    with pytest.raises(DatasetError, match=r"recognised by kinds \['labelsjson', 'also'\]: name one"): get_dataset(root)
    assert get_dataset(f"also:{root}").kind == 'also'


def test_a_smoke_study_with_the_users_mode_on_the_users_kind(registered, tmp_path, capsys):
    from esc50_norm.study.cli import main as cli
    root = make_labels_json(tmp_path / 'mine')
    out = tmp_path / 'res'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        rc = cli(['study', '--preset', 'smoke', '--dataset', f"labelsjson:{root}", '--normalizations', 'none,scaled',
                  '--bs', '2', '--out', str(out), '--device', 'cpu', '--cache-dir', str(tmp_path / 'cache')])
    assert rc == 0, capsys.readouterr()
    runs = [json.loads((out / 'runs' / f"fold{f}-scaled-seed0.json").read_text()) for f in (1, 2)]
    assert all(r['dataset_kind'] == 'labelsjson' and r['spec_norm'] == 'scaled' for r in runs)
    stats = json.loads((out / 'runs' / 'fold1-scaled-seed0.stats.json').read_text())
    assert stats['mode'] == 'scaled' and stats['k'] == 2.0
    assert SpecNormalize.from_file(out / 'runs' / 'fold1-scaled-seed0.stats.json').k == 2.0
    assert 'scaled - none' in (out / 'report.md').read_text()                  # its contrast with its baseline
