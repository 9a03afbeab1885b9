"Command line: `esc50-norm study|report|cache|demo`"
from __future__ import annotations
import argparse
import sys
from pathlib import Path

__all__ = ['main']


def _shard(s: str) -> tuple:
    "'i/n' (1-based) -> (i-1, n)"
    try: i, n = map(int, s.split('/'))
    except ValueError: raise argparse.ArgumentTypeError(f"--shard takes i/n such as 1/4, got {s!r}") from None
    if not 1 <= i <= n: raise argparse.ArgumentTypeError(f"--shard {s}: i must be between 1 and n")
    return i - 1, n


def _ints(s: str) -> tuple: return tuple(int(x) for x in s.split(','))
def _strs(s: str) -> tuple: return tuple(x for x in s.split(',') if x)


def _overrides(a) -> dict:
    return dict(folds=a.folds, seeds=a.seeds, normalizations=a.normalizations, epochs=a.epochs, bs=a.bs,
                pipeline=a.pipeline, clips_per_class=a.clips_per_class,
                bf16=True if a.bf16 else None, channels_last=True if a.channels_last else None)


def cmd_study(a):
    from .experiment import get_preset, run_study
    from .report import write_report
    preset = get_preset(a.preset, **_overrides(a))
    out = Path(a.out or f"results/{preset.name}")
    run_study(preset, out, data=a.data, cache_dir=a.cache_dir, device=a.device, shard=a.shard, full_data=not a.partial_data)
    if not a.no_report: print(f"report: {write_report(out)}")


def cmd_report(a):
    from .report import write_report
    for out in a.results: print(f"report: {write_report(out)}")


def cmd_cache(a):
    from .experiment import get_preset, load_study_data
    sd = load_study_data(get_preset(a.preset), a.data, a.cache_dir, device='cpu', full_data=not a.partial_data)
    print(f"{len(sd.cache)} clips cached: {tuple(sd.cache.x.shape)} at {sd.cache.sr} Hz")


def cmd_demo(a):
    from .demo import demo
    demo(a.out)


def main(argv=None):
    p = argparse.ArgumentParser(prog='esc50-norm', description=__doc__)
    sub = p.add_subparsers(dest='cmd', required=True)
    data = argparse.ArgumentParser(add_help=False)
    data.add_argument('--data', help="ESC-50 folder (meta/esc50.csv + audio/); default $ESC50_PATH, else download")
    data.add_argument('--partial-data', action='store_true', help="accept an ESC-50-shaped folder that is not all of ESC-50")
    data.add_argument('--cache-dir', help="where decoded clips are cached; default $ESC50_NORM_CACHE or ~/.cache/esc50_norm")

    s = sub.add_parser('study', parents=[data], help="run (or resume) a preset's grid, then write its report")
    s.add_argument('--preset', default='quick', help="blog, cv, ablation, quick or smoke (default quick)")
    s.add_argument('--out', help="results folder (default results/PRESET); finished runs in it are skipped")
    s.add_argument('--device', help="cuda, cpu, ... (default: the GPU when there is one)")
    s.add_argument('--shard', type=_shard, default=(0, 1), help="run every n-th job, i/n (1-based), to share a GPU")
    s.add_argument('--folds', type=_ints); s.add_argument('--seeds', type=_ints)
    s.add_argument('--normalizations', type=_strs, help="comma-separated: none,wave,global,channel,global_nowave,channel_nowave")
    s.add_argument('--epochs', type=int); s.add_argument('--bs', type=int); s.add_argument('--clips-per-class', type=int)
    s.add_argument('--pipeline', choices=['device', 'cached', 'files'])
    s.add_argument('--bf16', action='store_true', help="bf16 autocast"); s.add_argument('--channels-last', action='store_true')
    s.add_argument('--no-report', action='store_true', help="skip the report (e.g. in all but the last shard)")
    s.set_defaults(func=cmd_study)

    r = sub.add_parser('report', help="tables and plots from results folders")
    r.add_argument('results', nargs='+', help="results folders (holding preset.json and runs/)")
    r.set_defaults(func=cmd_report)

    c = sub.add_parser('cache', parents=[data], help="decode and cache the clips of a preset")
    c.add_argument('--preset', default='blog')
    c.set_defaults(func=cmd_cache)

    d = sub.add_parser('demo', help="a DataBlock on generated clips: stats, and a show_batch PNG")
    d.add_argument('--out', default='demo', help="folder for the generated clips, stats and PNG")
    d.set_defaults(func=cmd_demo)

    a = p.parse_args(argv)
    try: a.func(a)
    except (ValueError, FileNotFoundError, KeyError) as e:
        print(f"esc50-norm {a.cmd}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__': sys.exit(main())
