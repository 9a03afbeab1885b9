"The pipeline benchmark runs and writes its table (its numbers go to notes, not assertions)"
import importlib.util
from pathlib import Path

import numpy as np

from esc50_norm.study.demo import make_fake_esc50


def test_benchmark_writes_a_table_with_ratios_to_the_files_pipeline(tmp_path):
    spec = importlib.util.spec_from_file_location('pipelines', Path(__file__).parents[1] / 'benchmarks' / 'pipelines.py')
    bench = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench)
    root = make_fake_esc50(tmp_path / 'esc50', clips_per_fold=1, sr=16000, seconds=(0.5, 1.0))
    res = bench.main(['--data', str(root), '--clips-per-class', '1', '--epochs', '1', '--bs', '4', '--device', 'cpu',
                      '--cache-dir', str(tmp_path / 'cache'), '--out', str(tmp_path / 'bench.md')])
    assert sorted(zip(res.stage, res.pipeline)) == sorted((s, p) for s in ('load', 'spec') for p in ('files', 'cached', 'device'))
    assert (res.clips == 16).all()                                  # every training clip of folds 2-5, once per epoch
    assert np.allclose(res.clips_per_s, res.clips / res.s_per_epoch)
    files = res[res.pipeline == 'files'].set_index('stage').clips_per_s
    assert np.allclose(res.speedup_vs_files, res.clips_per_s / res.stage.map(files))   # the ratio to files of the same stage and run
    table = (tmp_path / 'bench.md').read_text()
    assert all(f"{v:.3f}" in table for v in res.clips_per_s)


def test_precision_benchmark_interleaves_fp32_and_bf16_and_writes_ratios(tmp_path):
    spec = importlib.util.spec_from_file_location('precision', Path(__file__).parents[1] / 'benchmarks' / 'precision.py')
    bench = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench)
    root = make_fake_esc50(tmp_path / 'esc50', clips_per_fold=1, sr=16000, seconds=(0.5, 1.0))
    out = tmp_path / 'precision.md'
    res = bench.main(['--data', str(root), '--presets', 'mel-cpu', '--clips-per-class', '1', '--bs', '4', '--reps', '1',
                      '--steps', '1', '--cache-dir', str(tmp_path / 'cache'), '--out', str(out)])
    assert list(res.what) == ['bare xResNet18 step', "study's epoch"] and (res['size'] == '1x64x157').all()
    assert np.allclose(res.speedup, res.fp32_s / res.bf16_cl_s) and (res.fp32_s > 0).all() and (res.bf16_cl_s > 0).all()
    table = out.read_text()
    assert all(f"{v:.3f}" in table for v in res.speedup)


def test_memory_benchmark_names_a_partial_copy_in_one_line(tmp_path, capsys):
    import pytest
    spec = importlib.util.spec_from_file_location('memory', Path(__file__).parents[1] / 'benchmarks' / 'memory.py')
    bench = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench)
    root = make_fake_esc50(tmp_path / 'esc50', clips_per_fold=1, sr=16000, seconds=(0.5, 1.0))
    with pytest.raises(SystemExit) as e: bench.main(['--data', str(root)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and 'Traceback' not in err
    assert f"{root / 'meta' / 'esc50.csv'} has 20 rows, ESC-50 has 2000" in err
    assert '--partial-data' in bench.__doc__
