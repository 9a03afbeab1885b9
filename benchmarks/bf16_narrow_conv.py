"""oneDNN's bf16 weight gradient of a convolution strided along an input 1 wide: wrong, often NaN, on AVX-512 CPUs.

The failure (torch only): Conv2d(64, 128, 3, stride 2, padding 1) on a channels-last (2, 64, 4, 1) input under CPU bf16
autocast; its weight gradient, against fp64 on the same bf16-rounded operands, is garbage (NaN, inf or ~1e38) in most
trials. Each oneDNN ISA and thread count runs in a fresh process (`ONEDNN_MAX_CPU_ISA` is read at the first primitive):
AMX, AVX512_CORE_BF16 (an AMD EPYC with avx512_bf16), AVX512_CORE (AVX-512 without bf16), AVX2 (torch skips oneDNN for
bf16 there). Then the study's case, xResNet18 (c_in=1) on a 1x16x4 batch of 2 (a smoke study on clips of 0.4 s), two
training steps, with and without the library's guard (`NarrowConvFP32`: such convolutions in fp32), and the
guard's cost on the CPU grids' input (bs 64, 1x64x157), against capping the ISA. Usage:
  python benchmarks/bf16_narrow_conv.py [--trials 20] [--isas default,AVX512_CORE_BF16,AVX512_CORE,AVX2] [--threads 1,2]
                                        [--reps 3] [--out FILE]
"""
from __future__ import annotations
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

WRONG = 0.05
"A gradient is wrong when its largest error exceeds this fraction of its largest value (bf16 rounding: about 0.004)"
def conv_trials(trials: int, guard: bool = False) -> dict:
    "The bare failure, torch only: how many of `trials` weight gradients are wrong, and how many non-finite"
    import torch
    from torch import nn
    torch.manual_seed(0)
    conv = nn.Conv2d(64, 128, 3, stride=2, padding=1, bias=False).to(memory_format=torch.channels_last)
    wrong = nonfinite = 0
    for _ in range(trials):
        x = torch.randn(2, 64, 4, 1).contiguous(memory_format=torch.channels_last)
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=not guard): y = conv(x)
        g = torch.randn(y.shape)
        y.float().backward(g)
        w = conv.weight.detach().double().requires_grad_()
        nn.functional.conv2d(x.bfloat16().double(), w, stride=2, padding=1).backward(g.bfloat16().double())
        got, conv.weight.grad = conv.weight.grad, None
        wrong += not float((got - w.grad).abs().max() / w.grad.abs().max()) < WRONG
        nonfinite += not bool(torch.isfinite(got).all())
    return dict(wrong=wrong, nonfinite=nonfinite, trials=trials)


def _narrow_grads_wrong(model, x, y) -> tuple:
    "One bf16 step of `model`: (any gradient non-finite, any strided conv on a width of 1 with a wrong weight gradient)"
    import torch
    from esc50_norm.precision import narrow_strided
    grads, hooks = [], []
    def keep(conv, args, out):                                   # the conv's input and, in the backward pass, its grad
        if not narrow_strided(conv, args[0]): return
        inp = args[0].detach().to(out.dtype)                     # as the conv computed: bf16, or fp32 where guarded
        out.register_hook(lambda g: grads.append((conv, inp, g)))
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d): hooks.append(m.register_forward_hook(keep))
    model.zero_grad()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    for h in hooks: h.remove()
    wrong = False
    for conv, inp, g in grads:                                   # fp64 on the same (bf16-rounded) operands
        w = conv.weight.detach().double().requires_grad_()
        torch.nn.functional.conv2d(inp.double(), w, stride=conv.stride, padding=conv.padding).backward(g.double())
        wrong |= not float((conv.weight.grad - w.grad).abs().max()) <= WRONG * float(w.grad.abs().max())
    return not all(bool(torch.isfinite(p.grad).all()) for p in model.parameters()), wrong


def model_trials(trials: int, guard: bool, steps: int = 2) -> dict:
    """The study's case: xResNet18 on 2x1x16x4, `steps` Adam steps (at the first, its zero-initialised BatchNorms pass no
    gradient to the strided convs); wrong when a strided conv on a width of 1 gets a wrong weight gradient"""
    import torch
    from fastai.vision.models.xresnet import xresnet18
    from esc50_norm.precision import NarrowConvFP32
    wrong = nonfinite = 0
    for seed in range(trials):
        torch.manual_seed(seed)
        model = xresnet18(pretrained=False, c_in=1, n_out=3).to(memory_format=torch.channels_last)
        hooks, opt = NarrowConvFP32(model) if guard else None, torch.optim.Adam(model.parameters(), 1e-3)
        bad = off = False
        for _ in range(steps):
            x = (30 * torch.randn(2, 1, 16, 4)).contiguous(memory_format=torch.channels_last)
            b, o = _narrow_grads_wrong(model, x, torch.randint(0, 3, (2,)))
            bad, off = bad or b, off or o
            opt.step()
        if hooks: hooks.remove()
        wrong += bad or off
        nonfinite += bad
    return dict(wrong=wrong, nonfinite=nonfinite, trials=trials)


def step_times(reps: int, steps: int = 3, bs: int = 64, size=(64, 157)) -> dict:
    "Seconds per training step of xResNet18 (c_in=1, n_out=50) at `size`: fp32, bf16 + channels-last, and bf16 guarded"
    import torch
    from fastai.vision.models.xresnet import xresnet18
    from esc50_norm.precision import NarrowConvFP32
    times = dict(fp32=[], bf16=[], bf16_guarded=[])
    for _ in range(reps):
        for kind in times:
            torch.manual_seed(0)
            fmt = torch.contiguous_format if kind == 'fp32' else torch.channels_last
            model = xresnet18(pretrained=False, c_in=1, n_out=50).to(memory_format=fmt)
            hooks = NarrowConvFP32(model) if kind == 'bf16_guarded' else None
            opt = torch.optim.Adam(model.parameters(), 1e-3)
            x, y = torch.randn(bs, 1, *size).contiguous(memory_format=fmt), torch.randint(0, 50, (bs,))
            ts = []
            for _ in range(steps + 1):                       # the first step is a warm-up
                t0 = time.perf_counter()
                with torch.autocast('cpu', dtype=torch.bfloat16, enabled=kind != 'fp32'):
                    loss = torch.nn.functional.cross_entropy(model(x), y)
                opt.zero_grad(); loss.backward(); opt.step()
                ts.append(time.perf_counter() - t0)
            times[kind].append(statistics.median(ts[1:]))
            if hooks: hooks.remove()
    return {k: statistics.median(v) for k, v in times.items()}


def child(a) -> dict:
    "One process, one oneDNN ISA and thread count: what it is asked for, as JSON on stdout"
    import torch
    torch.set_num_threads(a.threads)
    res = dict(isa=os.environ.get('ONEDNN_MAX_CPU_ISA', 'default'), threads=torch.get_num_threads())
    if a.child == 'failure':
        res.update(conv=conv_trials(a.trials), conv_fp32=conv_trials(a.trials, guard=True),
                   model=model_trials(a.trials, guard=False), model_guarded=model_trials(a.trials, guard=True))
    else: res.update(step_times(a.reps))
    return res


def _run_child(what: str, isa: str, threads: int, a) -> dict:
    env = {k: v for k, v in os.environ.items() if k != 'ONEDNN_MAX_CPU_ISA'}
    if isa != 'default': env['ONEDNN_MAX_CPU_ISA'] = isa
    env['OMP_NUM_THREADS'] = str(threads)
    cmd = [sys.executable, __file__, '--child', what, '--threads', str(threads), '--trials', str(a.trials),
           '--reps', str(a.reps)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode: raise RuntimeError(f"{' '.join(cmd)} failed (ONEDNN_MAX_CPU_ISA={isa}):\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _rate(d: dict) -> str: return f"{d['wrong']}/{d['trials']} ({d['nonfinite']} non-finite)"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--trials', type=int, default=20, help="trials per case and process")
    p.add_argument('--isas', default='default,AVX512_CORE_BF16,AVX512_CORE,AVX2',
                   help="values of ONEDNN_MAX_CPU_ISA, one process each ('default': unset)")
    p.add_argument('--threads', default='1,2')
    p.add_argument('--reps', type=int, default=3, help="timing repetitions, the kinds alternating (0: no timing)")
    p.add_argument('--out', default=None, help="write the tables here (markdown); default: print only")
    p.add_argument('--child', choices=('failure', 'speed'), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        a.threads = int(a.threads)
        print(json.dumps(child(a)))
        return 0
    isas, threads = a.isas.split(','), [int(t) for t in a.threads.split(',')]
    rows = []
    for isa in isas:
        for th in threads:
            r = _run_child('failure', isa, th, a)
            rows.append(f"| {r['isa']} | {r['threads']} | {_rate(r['conv'])} | {_rate(r['conv_fp32'])} | "
                        f"{_rate(r['model'])} | {_rate(r['model_guarded'])} |")
            print(rows[-1], flush=True)
    text = ("| ONEDNN_MAX_CPU_ISA | threads | conv bf16: wrong | conv fp32 | xResNet18 bf16: wrong | "
            "xResNet18 bf16 guarded |\n|---|---|---|---|---|---|\n" + '\n'.join(rows) + '\n')
    if a.reps:
        speed = []
        for th in threads:
            for isa in ('default', 'AVX512_CORE_BF16'):          # AMX (where there is) against the ISA capped
                r = _run_child('speed', isa, th, a)
                speed.append(f"| {r['isa']} | {r['threads']} | {r['fp32']:.3f} | {r['bf16']:.3f} | "
                             f"{r['bf16_guarded']:.3f} | {r['bf16_guarded'] / r['bf16']:.3f} |")
                print(speed[-1], flush=True)
        text += ("\nSeconds per training step, xResNet18 c_in=1 n_out=50, bs 64, 1x64x157 (median of "
                 f"{a.reps} repetitions of 3 steps):\n\n| ONEDNN_MAX_CPU_ISA | threads | fp32 | bf16 + channels-last | "
                 "bf16 guarded | guarded / bf16 |\n|---|---|---|---|---|---|\n" + '\n'.join(speed) + '\n')
    import torch
    from esc50_norm.precision import cpu_model, onednn_version
    head = (f"`python benchmarks/bf16_narrow_conv.py {' '.join(argv if argv is not None else sys.argv[1:])}`: "
            f"{cpu_model() or platform.processor()}, torch {torch.__version__}, oneDNN {onednn_version()}. Wrong: the "
            f"weight gradient's largest error, against fp64 on the same operands, over {WRONG} of its largest value (bf16 "
            "rounding: about 0.004); for xResNet18, that of any convolution strided along an input 1 wide.\n\n")
    print(head + text)
    if a.out: Path(a.out).write_text(f"# bf16 weight gradient of convolutions strided along a width of 1\n\n{head}{text}")
    return 0


if __name__ == '__main__': sys.exit(main())
