"The notebooks in nbs/ run top to bottom on small inputs (generated clips, a tiny results folder) and show what they promise"
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest

from esc50_norm.study.demo import make_fake_esc50
from esc50_norm.study.experiment import get_preset, run_study

NBS = Path(__file__).resolve().parents[1] / 'nbs'
NOTEBOOKS = ('01_normalization_walkthrough.ipynb', '02_results.ipynb')


@pytest.fixture(scope='module')
def fake_root(tmp_path_factory):
    "An ESC-50-shaped folder: 4 classes x 5 folds, 22.05 kHz clips of 3-6 s, some stereo"
    return make_fake_esc50(tmp_path_factory.mktemp('data') / 'esc50', clips_per_fold=1)


@pytest.fixture(scope='module')
def results_dir(fake_root, tmp_path_factory):
    "A results folder whose grid is half done: shard 1 of 2 of fold 1 x (none, global, channel) x seeds (0, 1)"
    out = tmp_path_factory.mktemp('results') / 'smoke'
    preset = get_preset('smoke', folds=(1,), normalizations=('none', 'global', 'channel'), seeds=(0, 1))
    run_study(preset, out, data=fake_root, cache_dir=tmp_path_factory.mktemp('cache'), device='cpu', shard=(0, 2),
              log=lambda *a: None, full_data=False)
    return out


@pytest.fixture
def nb_env(monkeypatch, tmp_path):
    "Small inputs for the notebooks, and a `python3` kernel that is this interpreter (a user's own kernelspec cannot shadow it)"
    spec = tmp_path / 'jupyter' / 'kernels' / 'python3'
    spec.mkdir(parents=True)
    (spec / 'kernel.json').write_text(json.dumps(dict(
        argv=[sys.executable, '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
        display_name='Python 3 (test)', language='python')))
    monkeypatch.setenv('JUPYTER_PATH', str(tmp_path / 'jupyter'))
    monkeypatch.setenv('NB_CLIPS_PER_CLASS', '1')
    monkeypatch.setenv('ESC50_NORM_CACHE', str(tmp_path / 'cache'))
    return monkeypatch


def execute(name: str) -> nbformat.NotebookNode:
    "Run a notebook in nbs/ (as its working directory) with the environment of this process; raises on any cell error"
    from nbclient import NotebookClient
    nb = nbformat.read(NBS / name, as_version=4)
    NotebookClient(nb, kernel_name='python3', timeout=300, startup_timeout=120,
                   resources={'metadata': {'path': str(NBS)}}).execute()
    return nb


def outputs(nb) -> tuple[str, list, int]:
    "Everything printed, the text of each displayed object, and the number of images"
    printed, shown, images = [], [], 0
    for cell in nb.cells:
        for o in cell.get('outputs', []):
            assert o.output_type != 'error', f"{o.ename}: {o.evalue}"
            if o.output_type == 'stream' and o.name == 'stdout': printed.append(o.text)
            if o.output_type in ('display_data', 'execute_result'):
                shown.append(o.data.get('text/plain', ''))
                images += 'image/png' in o.data
    return ''.join(printed), shown, images


@pytest.mark.parametrize('name', NOTEBOOKS)
def test_notebooks_are_stored_without_outputs(name):
    nb = nbformat.read(NBS / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == 'code']
    assert code and all(not c.outputs and c.execution_count is None for c in code)


@pytest.mark.slow
def test_walkthrough_runs_on_generated_clips(nb_env, fake_root):
    nb_env.setenv('ESC50_PATH', str(fake_root))
    printed, shown, images = outputs(execute(NOTEBOOKS[0]))
    assert f"data: $ESC50_PATH\n  {fake_root}: 20 clips, 4 classes" in printed
    assert re.search(r"after AudioNormalize: shape \(1, 80000\), 16000 Hz, mean [+-]0\.0000, std 1\.0000", printed)
    assert 'AudioSpectrogram (1, 201, 401)' in printed
    assert '20 clips (1 per class and fold): 16 for training (folds 2-5), 4 for validation (fold 1)' in printed
    assert "global: SpecNormalize(mode='global', stats (1, 1, 1, 1)" in printed
    assert "loaded: SpecNormalize(mode='channel', stats (1, 1, 201, 1)" in printed
    assert 'refused: stats file' in printed and 'needs (1, 1, 128, 1)' in printed
    # waveform, resampled/normalized waveforms, spectrogram, global vs channel, histograms, channel stats
    assert images == 6


@pytest.mark.slow
def test_results_notebook_rebuilds_tables_and_plots(nb_env, results_dir):
    nb_env.setenv('RESULTS_DIR', str(results_dir))
    printed, shown, images = outputs(execute(NOTEBOOKS[1]))
    assert f"{results_dir}: preset 'smoke', 3 finished runs" in printed
    assert 'Incomplete grid: 3 of 6 runs finished. Missing: fold1-none-seed1, fold1-global-seed1, fold1-channel-seed1' in printed
    runs, summary, folds, paired = [s for s in shown if not s.startswith('<Figure')]
    assert re.findall(r"^\d+\s+1\s+(\w+)\s+0\s", runs, re.M) == ['channel', 'global', 'none']   # fold 1, seed 0
    assert 'ci95_high' in summary and all(f"\n{n} " in summary for n in ('none', 'global', 'channel'))
    assert folds.startswith('normalization') and all(n in folds for n in ('none', 'global', 'channel'))
    assert 'channel - none' in paired and 'channel - global' in paired
    assert images == 2                                                  # accuracy, training curves


@pytest.mark.slow
def test_inference_notebook_trains_exports_and_predicts_files(nb_env, fake_root):
    nb_env.setenv('ESC50_PATH', str(fake_root))
    printed, shown, images = outputs(execute('03_inference.ipynb'))
    assert f"data: $ESC50_PATH\n  {fake_root}: 20 clips, 4 classes" in printed
    assert 'model: trained here on 16 clips (1 per class and fold, folds 2-5), accuracy on the 4 clips of fold 1: ' in printed
    assert re.search(r"loaded model\.pkl \(4\d MB\): XResNet, 4 classes", printed)       # xResNet18's weights, no clips
    assert 'item transforms:  Pipeline: DownmixMono -> Resample -> CropPad -> ToTensor' in printed
    assert 'batch transforms: Pipeline: AudioNormalize -> AudioToSpec -> SpecNormalize' in printed
    assert re.search(r"predict\(path\): \w+, p = [01]\.\d{3}; 4 probabilities, sum 1\.000", printed)
    assert 'predict(AudioTensor) gives the same probabilities: True' in printed
    table = next(s for s in shown if 'probability' in s)
    assert len(re.findall(r"^\d+ +1-\d+-A-\d\.wav +\w+ +[123] +\w+ +0\.\d+$", table, re.M)) == 12   # 4 fold-1 clips x top 3
    assert re.search(r"[0-4] of 4 right; spectrograms \(1, 32, 81\)", printed)
    assert images == 1                                                           # the spectrograms with their classes


@pytest.mark.slow
def test_inference_notebook_loads_the_model_in_MODEL(nb_env, fake_root, tmp_path):
    "A model exported elsewhere (here: a tiny one on the files pipeline) is loaded, not trained"
    from fastai.data.all import CrossEntropyLossFlat
    from fastai.learner import Learner
    from torch import nn
    from esc50_norm import SpectrogramConfig
    from esc50_norm.study import esc50_dataloaders, read_meta
    spec = SpectrogramConfig(n_fft=256, hop_length=800, mel=True, n_mels=8)
    dls = esc50_dataloaders(read_meta(fake_root, full=False), 1, 'global', spec, bs=4, pipeline='files', root=fake_root,
                            device='cpu', duration=2.0)
    learn = Learner(dls, nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, 4)), loss_func=CrossEntropyLossFlat())
    learn.fit(1)
    learn.export(tmp_path / 'tiny.pkl')
    nb_env.setenv('ESC50_PATH', str(fake_root))
    nb_env.setenv('MODEL', str(tmp_path / 'tiny.pkl'))
    printed, _, images = outputs(execute('03_inference.ipynb'))
    assert 'trained here' not in printed and 'loaded tiny.pkl (0 MB): Sequential, 4 classes' in printed
    assert re.search(r"[0-4] of 4 right; spectrograms \(1, 8, 41\)", printed) and images == 1
