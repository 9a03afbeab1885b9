"Shared fixtures: the real ESC-50 copy beside the repository, when there is one"
from pathlib import Path

import matplotlib
import pytest

matplotlib.use('Agg')

SHARED_ESC50 = Path(__file__).resolve().parents[1].parent / 'shared' / 'esc50'


@pytest.fixture(scope='session')
def shared_esc50() -> Path:
    "../shared/esc50, or a skip that says why"
    if not (SHARED_ESC50 / 'meta' / 'esc50.csv').is_file():
        pytest.skip(f"{SHARED_ESC50} not found: the real-data tests run only beside this repository's shared folder")
    return SHARED_ESC50
