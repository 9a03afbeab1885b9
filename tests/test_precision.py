"bf16 autocast on the CPU: the forward pass and the loss only, so that training follows fp32; the CPU flags that enable it"
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from fastai.callback.core import Callback
from fastai.data.core import DataLoaders
from fastai.learner import Learner
from fastai.torch_core import set_seed

from esc50_norm.precision import BF16Autocast, ChannelsLastInput, NarrowConvFP32, _cpu_flags, native_bf16


def _dls(n=256, bs=32, c=1):
    "A linearly separable 4-class problem on cx8x8 'spectrograms'"
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, c, 8, 8, generator=g)
    w = torch.randn(64 * c, 4, generator=g)
    y = (x.flatten(1) @ w).argmax(1)
    ds = list(zip(x, y))
    return DataLoaders.from_dsets(ds, ds[:64], bs=bs, shuffle=False, drop_last=True, device='cpu')


def _model():
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(512, 4))


class LossLog(Callback):
    order = 95
    def before_fit(self): self.losses = []
    def after_loss(self):
        if self.training: self.losses.append(float(self.loss.detach()))


class AutocastAroundEverything(Callback):
    "The wrong scope: one CPU autocast region held from `before_fit` to `after_fit`, the backward pass and the steps included"
    def before_fit(self): self.ac = torch.autocast('cpu', dtype=torch.bfloat16); self.ac.__enter__()
    def after_fit(self): self.ac.__exit__(None, None, None)


def _train(*cbs, epochs=8) -> list:
    set_seed(0, reproducible=True)
    log = LossLog()
    learn = Learner(_dls(), _model(), loss_func=nn.CrossEntropyLoss(), lr=1e-2, cbs=[log, *cbs])
    with learn.no_bar(), learn.no_logging(): learn.fit(epochs)
    return log.losses


def test_bf16_autocast_follows_fp32_and_the_wrong_scope_does_not():
    fp32, bf16, wrong = _train(), _train(BF16Autocast()), _train(AutocastAroundEverything())
    assert fp32[-1] < 0.5 * fp32[0]                                 # the problem is learnable in these 64 steps
    assert max(abs(a - b) for a, b in zip(fp32, bf16)) < 0.05       # bf16 for the forward pass and the loss: the same curve
    assert bf16[-1] < 0.5 * bf16[0]
    # around the backward pass too, autocast keeps its bf16 copies of the first batch's weights: it learns nothing, silently
    assert wrong[-1] > 0.9 * wrong[0] and abs(wrong[-1] - fp32[-1]) > 0.3


def test_bf16_autocast_really_computes_in_bf16_on_the_cpu():
    seen, during = [], []
    class Peek(Callback):
        def before_fit(self): self.model[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
        def after_loss(self): during.append(('loss', torch.is_autocast_enabled('cpu')))
        def before_backward(self): during.append(('backward', torch.is_autocast_enabled('cpu')))
        def before_step(self): during.append(('step', torch.is_autocast_enabled('cpu')))
    _train(BF16Autocast(), Peek(), epochs=1)
    assert seen and set(seen) == {torch.bfloat16}                   # the convolution ran in bf16, training and validation
    # left after the loss of each batch: neither the backward pass nor the step runs under autocast, nor the rest
    assert {w for w, _ in during} == {'loss', 'backward', 'step'} and {w for w, on in during if on} <= {'loss'}
    assert not torch.is_autocast_enabled('cpu')


def test_channels_last_input_converts_model_and_batches():
    formats = []
    class Peek(Callback):
        order = 2
        def before_batch(self): formats.append(self.xb[0].is_contiguous(memory_format=torch.channels_last))
    model = nn.Sequential(nn.Conv2d(2, 8, 3, padding=1), nn.Flatten(), nn.Linear(512, 4))
    learn = Learner(_dls(c=2), model, loss_func=nn.CrossEntropyLoss(),    # 2 channels: with 1, both layouts are the same
                    cbs=[ChannelsLastInput(), Peek()])
    with learn.no_bar(), learn.no_logging(): learn.fit(1)
    assert all(formats) and learn.model[0].weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize('text,native', [
    ("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 avx512_vnni\n", True),      # AMD Zen 4, Intel Cooper Lake
    ("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_vnni amx_bf16 amx_tile\n", True),  # Intel Sapphire Rapids
    ("processor\t: 0\nflags\t\t: fpu sse avx2 fma avx512f avx512bw\n", False),            # AVX-512 without BF16
    ("processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n", True),                      # Arm with FEAT_BF16
    ("processor\t: 0\nFeatures\t: fp asimd evtstrm aes\n", False),
])
def test_native_bf16_reads_the_cpu_flags(tmp_path, monkeypatch, text, native):
    f = tmp_path / 'cpuinfo'
    f.write_text(text)
    monkeypatch.setattr('esc50_norm.precision._cpu_flags', lambda: _cpu_flags.__wrapped__(str(f)))
    assert native_bf16('cpu') is native and native_bf16() is native


def test_native_bf16_without_cpuinfo_is_false(tmp_path, monkeypatch):
    "A CPU whose flags cannot be read is taken as without bf16; a device that is neither CPU nor CUDA has none"
    assert _cpu_flags.__wrapped__(str(tmp_path / 'absent')) == frozenset()
    monkeypatch.setattr('esc50_norm.precision._cpu_flags', lambda: _cpu_flags.__wrapped__(str(tmp_path / 'absent')))
    assert native_bf16('cpu') is False and native_bf16('meta') is False


def _narrow_net():
    "A convolution, then one strided along the width: on an input 1 wide, where oneDNN's bf16 weight gradient is wrong"
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 16, 3, stride=2, padding=1)).to(
        memory_format=torch.channels_last)


@pytest.mark.parametrize('width,autocast,fp32', [(1, True, {'1'}), (8, True, set()), (1, False, set())])
def test_the_guard_runs_convolutions_strided_along_a_narrow_width_in_fp32(width, autocast, fp32):
    torch.manual_seed(0)
    net, seen = _narrow_net(), []
    for m in net: m.register_forward_hook(lambda m, i, o: seen.append((i[0].detach(), o.dtype)))
    guard = NarrowConvFP32(net)
    x = torch.randn(2, 1, 8, width).contiguous(memory_format=torch.channels_last)
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
        y = net(x)
        after = torch.is_autocast_enabled('cpu')
    assert guard.engaged == fp32 and after is autocast               # autocast left as the guard found it
    low = torch.bfloat16 if autocast else torch.float32
    assert [d for _, d in seen] == [low, torch.float32 if fp32 else low]
    g = torch.randn(y.shape)
    y.float().backward(g)
    h, w = seen[1][0].double(), net[1].weight.detach().double().requires_grad_()
    nn.functional.conv2d(h, w, stride=2, padding=1).backward(g.to(y.dtype).double())
    err = (net[1].weight.grad - w.grad).abs().max() / w.grad.abs().max()
    assert err < (1e-5 if fp32 or not autocast else 0.05), err   # fp32 where it was guarded: the right gradient
    guard.remove()
    assert not net[1]._forward_pre_hooks and len(net[1]._forward_hooks) == 1      # the guard's hooks gone, this test's left


def _narrow_dls(n=64, bs=16):
    "4 classes of 1x8x1 inputs: a batch is 1 wide"
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, 8, 1, generator=g)
    ds = list(zip(x, (x[:, 0, :4, 0].sum(1) > 0).long() + 2 * (x[:, 0, 4:, 0].sum(1) > 0).long()))
    return DataLoaders.from_dsets(ds, ds[:32], bs=bs, shuffle=False, drop_last=True, device='cpu')


@pytest.mark.parametrize('flags', ['avx512f amx_bf16 amx_tile avx512_bf16', 'avx512f avx512_bf16', 'avx2 fma'])
def test_bf16_autocast_guards_narrow_convolutions_alike_on_every_cpu(flags, monkeypatch):
    "oneDNN's wrong gradient is not AMX's (AVX-512 BF16 and AVX-512 have it too): the same layers run in fp32 everywhere"
    monkeypatch.setattr('esc50_norm.precision._cpu_flags', lambda: frozenset(flags.split()))
    net = nn.Sequential(*_narrow_net(), nn.Flatten(), nn.Linear(16 * 4, 4))
    cb = BF16Autocast()
    learn = Learner(_narrow_dls(), net, loss_func=nn.CrossEntropyLoss(), cbs=[cb, ChannelsLastInput()])
    assert cb.fp32_convs is None                                   # before a fit
    with pytest.warns(RuntimeWarning, match=r"bf16 on the CPU: 1 run in fp32 \(strided along an input narrower"):
        with learn.no_bar(), learn.no_logging(): learn.fit(2)
    assert cb.fp32_convs == ('1',) and all(torch.isfinite(p).all() for p in net.parameters())
    assert not any(m._forward_pre_hooks for m in net)             # the hooks are gone after the fit


AS_CPU = Path(__file__).parents[1] / 'scripts' / 'as-cpu'


@pytest.mark.parametrize('kind, native, cap, isa', [('avx2', False, 'AVX2', 'AVX2'),
                                                    ('avx512_bf16', True, 'AVX512', 'AVX512_CORE_BF16')])
def test_as_cpu_shows_the_code_another_kind_of_cpu(kind, native, cap, isa):
    "scripts/as-cpu: the flags the library reads, the kernels torch picks and the run files' machine are the other kind's"
    if kind not in _cpu_flags(): pytest.skip(f"this CPU has no {kind}")
    code = ('import json, torch; from esc50_norm.precision import machine; '
            'print(json.dumps([torch.backends.cpu.get_cpu_capability(), machine()]))')
    res = subprocess.run([str(AS_CPU), kind, sys.executable, '-W', 'ignore', '-c', code], capture_output=True, text=True,
                         timeout=120)
    if res.returncode and ('unshare' in res.stderr or 'mount' in res.stderr):
        pytest.skip(f"no private mount namespace here: {res.stderr.strip()}")
    assert res.returncode == 0, res.stderr
    capability, m = json.loads(res.stdout.splitlines()[-1])
    assert capability == cap and (m['cpu_bf16'], m['cpu_amx']) == (native, False)
    assert m['cpu'].startswith(f"emulated {kind} CPU on ") and m['onednn_max_isa'] == isa


def test_as_cpu_names_what_it_cannot_do():
    res = subprocess.run([str(AS_CPU), 'sse', 'true'], capture_output=True, text=True, timeout=30)
    assert res.returncode == 2 and "no CPU kind 'sse' (avx2 or avx512_bf16)" in res.stderr
    res = subprocess.run([str(AS_CPU), 'avx2'], capture_output=True, text=True, timeout=30)
    assert res.returncode == 2 and 'usage: scripts/as-cpu avx2|avx512_bf16 CMD...' in res.stderr
