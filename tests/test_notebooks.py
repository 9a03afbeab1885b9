"The notebooks in nbs/ are stored with their outputs, and run top to bottom (generated clips, the committed results) showing what they promise"
import json
import re
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from esc50_norm.study.demo import make_fake_esc50

NBS = Path(__file__).resolve().parents[1] / 'nbs'
NOTEBOOKS = ('01_normalization_walkthrough.ipynb', '02_results.ipynb', '03_inference.ipynb')


@pytest.fixture(scope='module')
def fake_root(tmp_path_factory):
    "An ESC-50-shaped folder: 4 classes x 5 folds, 22.05 kHz clips of 3-6 s, some stereo"
    return make_fake_esc50(tmp_path_factory.mktemp('data') / 'esc50', clips_per_fold=1)


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


@pytest.mark.parametrize('name,images', zip(NOTEBOOKS, (6, 8, 2)))
def test_notebooks_are_stored_with_their_outputs(name, images):
    "A reader sees the results on the page: every code cell ran, in order, in one session, without an error"
    nb = nbformat.read(NBS / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == 'code']
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    assert sum(bool(c.outputs) for c in code) >= len(code) - 2                 # set-up and clean-up cells may print nothing
    assert outputs(nb)[2] >= images


@pytest.mark.slow
def test_walkthrough_runs_on_generated_clips(nb_env, fake_root):
    nb_env.setenv('ESC50_PATH', str(fake_root))
    printed, shown, images = outputs(execute(NOTEBOOKS[0]))
    assert f"data: $ESC50_PATH\n  {fake_root}: 20 clips, 4 classes" in printed
    assert re.search(r"after AudioNormalize: shape \(1, 80000\), 16000 Hz, mean [+-]0\.0000, std 1\.0000", printed)
    assert 'AudioSpectrogram (1, 201, 401)' in printed
    assert '20 clips (1 per class and fold): 16 for training (folds 2-5), 4 for validation (fold 1)' in printed
    assert "global: SpecNormalize(mode='global', mean_only=False: stats mean/std (1, 1, 1, 1)" in printed
    assert "loaded: SpecNormalize(mode='channel', mean_only=False: stats mean/std (1, 1, 201, 1)" in printed
    assert 'refused: stats file' in printed and 'needs (1, 1, 128, 1)' in printed
    # waveform, resampled/normalized waveforms, spectrogram, global vs channel, histograms, channel stats
    assert images == 6


def _texts(nb) -> list:
    "The text of every output, cell by cell (pictures aside)"
    return [[o.get('text', '') if o.output_type == 'stream' else o.get('data', {}).get('text/plain', '')
             for o in c.outputs if not str(o.get('data', {}).get('text/plain', '')).startswith('<Figure')]
            for c in nb.cells if c.cell_type == 'code']


@pytest.mark.slow
def test_results_notebook_shows_the_committed_results_as_stored(nb_env):
    "02 rebuilds its tables from the committed run files; what it shows today is what is stored in it"
    nb = execute(NOTEBOOKS[1])
    printed, shown, images = outputs(nb)
    runs = [json.loads(p.read_text()) for p in (NBS.parent / 'results' / 'cv-bf16' / 'runs').glob('fold*-seed*.json') if p.name.count('.') == 1]
    end = [pd.Timestamp(r['finished_at']) for r in runs]                      # these files predate start times: estimated
    start = [e - pd.Timedelta(seconds=r['setup_s'] + r['wall_s']) for e, r in zip(end, runs)]
    wall = (max(end) - min(start)).total_seconds() / 60
    assert f"cv-bf16: 75 of 75 runs finished; NVIDIA H100 80GB HBM3, bf16; wall time {wall:.1f} min" in printed
    abl = [p for p in (NBS.parent / 'results' / 'ablation-bf16' / 'runs').glob('fold*-seed*.json') if p.name.count('.') == 1]
    grids = [pj := json.loads((NBS.parent / 'results' / 'ablation-bf16' / 'preset.json').read_text()), *pj.get('added', [])]
    planned = {(f, n, r) for g in grids for f in g['folds'] for n in g['normalizations'] for r in g['seeds']}
    assert f'ablation-bf16: {len(abl)} of {len(planned)} runs finished' in printed     # a grid grown across sessions
    summary, folds, verdicts, effects, paired = shown[:5]
    assert re.search(r"^global\s+1-5\s+25\s+0\.7365", summary, re.M) and re.search(r"^4\s+0\.7415\s+0\.7955\s+0\.7645", folds, re.M)
    assert re.search(r"^channel - global\s+-0\.0150\s+-0\.0239\s+-0\.0061\s+fold\s+MixedLM\s+0\.0229", verdicts, re.M)
    assert re.search(r"^channel - global\s+0\.0687\s+0\.8514\s+unsettled", verdicts, re.M)      # the wrapped half
    assert re.search(r"^global - none\s+0\.0110\s+-0\.0020\s+-0\.0035\s+0\.054\s+0\.018\s+0\.0019$", effects, re.M)
    assert re.search(r"^channel - global\s+25\s+-0\.0150.*\s2\s+23\s*$", paired, re.M) and 't_test_p_holm' in paired
    assert any(re.search(r"^global\s+0\.7315\s+0\.7300\s+0\.7270\s+-0\.0015", s, re.M) for s in shown)   # the reference post
    mel = len([p for p in (NBS.parent / 'results' / 'mel-cpu' / 'runs').glob('fold*-seed*.json') if p.name.count('.') == 1])
    assert f"mel-cpu: {mel} of 60 runs finished" in printed
    fe = len([p for p in (NBS.parent / 'results' / 'frontends-cpu' / 'runs').glob('fold*-seed*.json') if p.name.count('.') == 1])
    pre = json.loads((NBS.parent / 'results' / 'frontends-cpu' / 'preset.json').read_text())
    planned = sum(len(g['folds']) * len(g['normalizations']) * len(g['seeds']) for g in [pre, *pre.get('added', [])])
    assert 'linear-cpu: 40 of 40 runs finished' in printed and f"frontends-cpu: {fe} of {planned} runs finished" in printed
    assert images == 9      # cv paired, accuracy, curves; ablation paired; mel-cpu paired; linear against log-mel;
                            # mel bands against linear bands; frontends-cpu paired; no augmentation against the strong
                            # recipe
    assert _texts(nb) == _texts(nbformat.read(NBS / NOTEBOOKS[1], as_version=4))


@pytest.mark.slow
def test_inference_notebook_trains_exports_and_predicts_files(nb_env, fake_root):
    nb_env.setenv('ESC50_PATH', str(fake_root))
    printed, shown, images = outputs(execute('03_inference.ipynb'))
    assert f"data: $ESC50_PATH\n  {fake_root}: 20 clips, 4 classes" in printed
    assert 'model: trained here on 16 clips (1 per class and fold, folds 2-5), accuracy on the 4 clips of fold 1: ' in printed
    assert re.search(r"loaded model\.pkl \(4\d MB\): XResNet, 4 classes", printed)       # xResNet18's weights, no clips
    assert 'item transforms:  Pipeline: DownmixMono -> Resample -> AudioCropPad -> ToTensor' in printed
    assert 'batch transforms: Pipeline: AudioNormalize -> AudioToSpec -> SpecNormalize' in printed
    assert re.search(r"predict\(path\): \w+, p = [01]\.\d{3}; 4 probabilities, sum 1\.000", printed)
    assert 'predict(AudioTensor) gives the same probabilities: True' in printed
    table = next(s for s in shown if 'probability' in s)
    assert len(re.findall(r"^\d+ +1-\d+-A-\d\.wav +\w+ +[123] +\w+ +0\.\d+$", table, re.M)) == 12   # 4 fold-1 clips x top 3
    assert re.search(r"[0-4] of 4 right; spectrograms \(1, 32, 81\)", printed)
    assert 'fold 1: 4 clips; most confused: ' in printed                         # ClassificationInterpretation
    assert sum('Audio object' in s for s in shown) == 4                          # plot_top_losses plays each clip
    assert images == 2                                                           # the spectrograms; the top losses


@pytest.mark.slow
def test_inference_notebook_loads_the_model_in_MODEL(nb_env, fake_root, tmp_path):
    "A model exported elsewhere (here: a tiny one on the files pipeline) is loaded, not trained"
    from fastai.data.all import CrossEntropyLossFlat
    from fastai.learner import Learner
    from torch import nn
    from esc50_norm import SpectrogramConfig
    from esc50_norm.study import fold_dataloaders, get_dataset
    spec = SpectrogramConfig(n_fft=256, hop_length=800, mel=True, n_mels=8)
    dls = fold_dataloaders(get_dataset(data=fake_root, full=False).meta(), 1, 'global', spec, bs=4, pipeline='files',
                           audio_root=fake_root / 'audio', device='cpu')
    learn = Learner(dls, nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, 4)), loss_func=CrossEntropyLossFlat())
    learn.fit(1)
    learn.export(tmp_path / 'tiny.pkl')
    nb_env.setenv('ESC50_PATH', str(fake_root))
    nb_env.setenv('MODEL', str(tmp_path / 'tiny.pkl'))
    printed, _, images = outputs(execute('03_inference.ipynb'))
    assert 'trained here' not in printed and 'loaded tiny.pkl (0 MB): Sequential, 4 classes' in printed
    assert re.search(r"[0-4] of 4 right; spectrograms \(1, 8, 101\)", printed) and images == 2
