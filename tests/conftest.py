"Shared fixtures: a small generated ESC-50-shaped folder, and the real ESC-50 copy beside the repository when there is one"
import os
from pathlib import Path


def _share_the_cores():
    "Under pytest-xdist (scripts/test), each worker's torch and the processes it starts get its share of the cores, not all of them"
    workers = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
    if workers > 1 and 'OMP_NUM_THREADS' not in os.environ:   # before torch is imported; a thread count set by hand is kept
        os.environ['OMP_NUM_THREADS'] = str(max(1, len(os.sched_getaffinity(0)) // workers))


_share_the_cores()

import matplotlib
import pytest

from esc50_norm.configs import Decoding
from esc50_norm.study.demo import make_fake_esc50

matplotlib.use('Agg')

SHARED_ESC50 = Path(__file__).resolve().parents[1].parent / 'shared' / 'esc50'


def pytest_collection_modifyitems(config, items):
    "Tests marked `gpu` run wherever CUDA is present, and are skipped with a reason elsewhere"
    import torch
    if torch.cuda.is_available(): return
    skip = pytest.mark.skip(reason="needs a CUDA GPU: torch sees none on this machine")
    for item in items:
        if 'gpu' in item.keywords: item.add_marker(skip)


@pytest.fixture(scope='session')
def shared_esc50() -> Path:
    "../shared/esc50, or a skip that says why"
    if not (SHARED_ESC50 / 'meta' / 'esc50.csv').is_file():
        pytest.skip(f"{SHARED_ESC50} not found: the real-data tests run only beside this repository's shared folder")
    return SHARED_ESC50


@pytest.fixture(scope='session')
def fake_root(tmp_path_factory) -> Path:
    "4 classes x 5 folds x 1 clip of 1-2 s at 16 kHz, some stereo: the smallest grid a study runs on"
    return make_fake_esc50(tmp_path_factory.mktemp('data') / 'esc50', clips_per_fold=1, sr=16000, seconds=(1.0, 2.0))


def fake_cached(d: Path, sr: int, seconds: tuple, duration: float) -> tuple:
    "A generated ESC-50-shaped folder of 2 clips per class and fold under `d`, its metadata, and its clips cached at 16 kHz"
    from esc50_norm.study import get_dataset, load_or_build_cache
    root = make_fake_esc50(d / 'esc50', clips_per_fold=2, sr=sr, seconds=seconds)
    df = get_dataset(data=root, full=False).meta()
    return root, df, load_or_build_cache(root / 'audio', df.file, d / 'cache', Decoding(16000, duration), progress=False)
