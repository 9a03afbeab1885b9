"The machine in a run file, and resuming a folder on a CPU of another precision (faked CPU flags)"
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from esc50_norm.precision import bf16_cost
from esc50_norm.study.datasets import get_dataset
from esc50_norm.study.presets import get_preset
from esc50_norm.study.study import Study

AVX2_ONLY = frozenset('fpu sse sse2 avx avx2 fma'.split())                          # the AMD EPYC without native bf16
AMX = frozenset('fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile'.split())            # the Intel Xeon


def tiny(**kw): return get_preset('smoke', **{**dict(folds=(1,), normalizations=('global',)), **kw})


def _cpuinfo() -> tuple:
    "The model name and flags of the first processor in /proc/cpuinfo, read here rather than through the library"
    text = Path('/proc/cpuinfo').read_text()
    model = re.search(r'^model name\s*:\s*(.*)$', text, re.M)
    flags = re.search(r'^(?:flags|Features)\s*:\s*(.*)$', text, re.M)
    return model and model.group(1).strip(), set(flags.group(1).split()) if flags else set()


@pytest.mark.skipif(not Path('/proc/cpuinfo').is_file(), reason="needs /proc/cpuinfo (Linux)")
def test_a_run_file_records_the_machine_it_ran_on(fake_root, tmp_path):
    study = Study(tiny(duration=0.5), tmp_path / 'res', dataset=get_dataset(data=fake_root, full=False), cache_dir=tmp_path / 'c',
                  device='cpu')
    study.prepare()
    study.run(study.todo()[0])
    row = json.loads(next((tmp_path / 'res' / 'runs').glob('fold1-global-seed0.json')).read_text())
    model, flags = _cpuinfo()
    native = bool(flags & {'avx512_bf16', 'amx_bf16', 'bf16'})
    onednn = re.search(r'(?:MKL-DNN|oneDNN) v(\S+)', torch.__config__.show())
    assert (row['cpu'], row['cpu_bf16'], row['cpu_amx']) == (model, native, 'amx_bf16' in flags)
    assert row['onednn'] == (onednn and onednn.group(1)) and row['onednn_max_isa'] == os.environ.get('ONEDNN_MAX_CPU_ISA')
    assert row['threads'] == torch.get_num_threads() and row['device'] == f"cpu ({os.cpu_count()} cores)"
    assert json.loads(row['config'])['bf16'] is native                    # the default precision follows the CPU
    # 0.5 s at hop 2000: 5 frames, narrowed to 2, 1 and 1 before the strided convolutions of xResNet18's last 3 stages
    fp32 = '5.0.convpath.0.0, 6.0.convpath.0.0, 7.0.convpath.0.0'
    assert row['bf16_fp32_convs'] == (fp32 if native else None)


def _bf16_folder(root, out) -> Path:
    "A folder of the smoke grid in bf16 + channels-last, claimed on this machine"
    Study(tiny(bf16=True, channels_last=True), out, dataset=get_dataset(data=root, full=False), device='cpu').prepare()
    return out


def test_a_bf16_folder_on_a_cpu_without_native_bf16_is_refused_with_the_flags_and_their_cost(fake_root, tmp_path,
                                                                                              monkeypatch):
    out = _bf16_folder(fake_root, tmp_path / 'res')
    monkeypatch.setattr('esc50_norm.precision._cpu_flags', lambda: AVX2_ONLY)
    timed = []                                          # the cost is timed on the recipe's input (test_precision times it)
    monkeypatch.setattr('esc50_norm.precision.bf16_cost', lambda shape: timed.append(shape) or 2.34)
    ds = get_dataset(data=fake_root, full=False)
    with pytest.raises(ValueError) as e: Study(tiny(), out, dataset=ds, device='cpu').prepare()
    msg = str(e.value)
    assert "its runs are in bf16 + channels-last, this study's would be in fp32. This CPU has no native bf16 (neither " \
           "avx512_bf16 nor amx_bf16 among its flags): --bf16 --channels-last resumes the folder as recorded" in msg
    assert "input (1x16x41, batches of 8) takes 2.3x as long as in fp32 (3 steps of each" in msg, msg
    assert timed == [(8, 1, 16, 41)]
    Study(tiny(bf16=True, channels_last=True), out, dataset=ds, device='cpu').prepare()   # the flags named resume it


def test_an_fp32_folder_on_a_bf16_cpu_is_refused_with_fp32_and_no_timing(fake_root, tmp_path, monkeypatch):
    ds = get_dataset(data=fake_root, full=False)
    out = tmp_path / 'res'
    Study(tiny(bf16=False, channels_last=False), out, dataset=ds, device='cpu').prepare()
    monkeypatch.setattr('esc50_norm.precision._cpu_flags', lambda: AMX)
    def untimed(*a, **kw): raise AssertionError("bf16 is native here: nothing to time")
    monkeypatch.setattr('esc50_norm.precision.bf16_cost', untimed)
    with pytest.raises(ValueError, match=r"its runs are in fp32, this study's would be in bf16 \+ channels-last; --fp32 "
                                         r"resumes the folder as recorded \(or use another --out folder\)$"):
        Study(tiny(), out, dataset=ds, device='cpu').prepare()
    Study(tiny(bf16=False, channels_last=False), out, dataset=ds, device='cpu').prepare()


def test_bf16_cost_refuses_a_shape_that_is_not_a_batch_of_images():
    with pytest.raises(ValueError, match=r"shape must be \(batch, channels, height, width\), got \(16, 157\)"):
        bf16_cost((16, 157))


def test_bf16_cost_times_both_precisions_and_gives_their_ratio(monkeypatch):
    "bf16's step time over fp32's, each on the batch in its own layout (a fake timer: 3 s against 1 s); and a real one"
    import esc50_norm.precision as prec
    seen = []
    def fake(model, x, bf16, steps):
        seen.append((bf16, x.is_contiguous(memory_format=torch.channels_last), tuple(x.shape), steps))
        return 3.0 if bf16 else 1.0
    monkeypatch.setattr(prec, '_step_seconds', fake)
    assert bf16_cost((2, 3, 16, 41), n_out=4, steps=2) == 3.0
    assert seen == [(False, False, (2, 3, 16, 41), 2), (True, True, (2, 3, 16, 41), 2)]
    monkeypatch.undo()
    real = bf16_cost((2, 1, 16, 41), n_out=4, steps=1)
    assert np.isfinite(real) and real > 0
