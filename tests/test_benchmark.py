"The pipeline benchmark runs and writes its table (its numbers go to notes, not assertions)"
import importlib.util
from pathlib import Path

from esc50_norm.study.demo import make_fake_esc50


def test_benchmark_writes_a_table_with_ratios_to_the_files_pipeline(tmp_path):
    spec = importlib.util.spec_from_file_location('pipelines', Path(__file__).parents[1] / 'benchmarks' / 'pipelines.py')
    bench = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench)
    root = make_fake_esc50(tmp_path / 'esc50', clips_per_fold=1, sr=16000, seconds=(0.5, 1.0))
    res = bench.main(['--data', str(root), '--clips-per-class', '1', '--epochs', '1', '--bs', '4', '--device', 'cpu',
                      '--cache-dir', str(tmp_path / 'cache'), '--out', str(tmp_path / 'bench.md')])
    assert sorted(zip(res.stage, res.pipeline)) == sorted((s, p) for s in ('load', 'spec') for p in ('files', 'cached', 'device'))
    assert (res[res.pipeline == 'files'].speedup_vs_files == 1).all() and (res.clips == 16).all()
    assert '| stage' in (tmp_path / 'bench.md').read_text()
