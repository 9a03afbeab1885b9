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
