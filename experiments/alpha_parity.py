"""Does the stem's stride-2 convolution set which mel bands' PCEN gain exponent moves which way?

In every run whose file records the gain exponents `alpha` it learned, the values it ended with alternate between neighbouring mel
bands, and the seed sets which way (docs/results.md, `pcen-gain-xeon`). This script tests where that comes from, as
docs/results.md declares: for each seed, the model `train_one` starts from (fold `--fold`, `pcen_learn_gain`, the
`frontends-cpu` recipe, the same seeding), and the gradient of the cross-entropy with respect to each band's `alpha`,
summed over the first `--batches` training batches (fp32, without mixup), in three variants of one initial network:

- `as_trained`: the network as the runs trained it (its first convolution has stride 2 along the bands);
- `stride1`: the same weights with that convolution at stride 1;
- `shifted`: the same weights with one band of zeros before the first band, so that every band meets the stride-2
  convolution at the other parity.

    python experiments/alpha_parity.py --seeds 0,1,2,3,4 --out results/alpha-parity

writes `gradients.csv` (seed, variant, band, gradient) and `parity.md` (`report(csv)`: per seed and variant, how many
of the 32 pairs of bands (2j, 2j+1) have the even band's gradient the larger)."""
from __future__ import annotations
import argparse
import copy
import os
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

VARIANTS = ('as_trained', 'stride1', 'shifted')


class ShiftBands(nn.Module):
    "One band of zeros before the first band (frequency is the second-to-last axis): every band's parity flips"
    def forward(self, x): return F.pad(x, (0, 0, 1, 0))


def variant(model: nn.Sequential, name: str) -> nn.Sequential:
    "A copy of `model` (front end, xResNet) as variant `name` of `VARIANTS`, with the same weights"
    front, body = copy.deepcopy(model[0]), copy.deepcopy(model[1])
    if name == 'stride1': body[0][0].stride = (1, 1)
    if name == 'shifted': return nn.Sequential(front, ShiftBands(), body)
    if name not in VARIANTS: raise ValueError(f"variant {name!r}: one of {', '.join(VARIANTS)}")
    return nn.Sequential(front, body)


def alpha_gradient(model: nn.Sequential, batches) -> torch.Tensor:
    "The gradient of the mean cross-entropy with respect to the front end's `alpha`, summed over `batches` (train mode)"
    model.train()
    total = torch.zeros_like(model[0].alpha)
    for x, y in batches:
        model.zero_grad()
        F.cross_entropy(model(x), y).backward()
        total += model[0].alpha.grad
    return total.detach()


def initial_model(preset, data, fold: int, seed: int, n_batches: int):
    "The network `train_one` starts from for (fold, `pcen_learn_gain`, seed), and its first `n_batches` training batches"
    from esc50_norm.study.presets import Job
    from esc50_norm.study.train import start_run
    _, dls, model = start_run(preset, data, Job(fold, 'pcen_learn_gain', seed))
    batches = []
    for x, y in dls.train:
        batches.append((x.as_subclass(torch.Tensor).float(), y.as_subclass(torch.Tensor)))
        if len(batches) == n_batches: break
    return model, batches


def gradients(preset, data, fold: int, seeds, n_batches: int) -> pd.DataFrame:
    "Per seed and variant, each band's summed gradient (a row per band)"
    rows = []
    for seed in seeds:
        model, batches = initial_model(preset, data, fold, seed, n_batches)
        for name in VARIANTS:
            g = alpha_gradient(variant(model, name), batches)
            rows += [dict(seed=seed, variant=name, band=b, gradient=float(v)) for b, v in enumerate(g.tolist())]
    return pd.DataFrame(rows)


def parity_table(df: pd.DataFrame) -> pd.DataFrame:
    "Per seed and variant: of the pairs of bands (2j, 2j+1), how many have the even band's gradient the larger"
    rows = {}
    for key, g in df.groupby(['seed', 'variant'], sort=False):
        v = g.sort_values('band').gradient.to_numpy()
        even, odd = v[0::2][:len(v) // 2], v[1::2]
        rows[key] = dict(pairs=len(odd), even_larger=int((even > odd).sum()), mean_even=v[0::2].mean(),
                         mean_odd=odd.mean())
    return pd.DataFrame.from_dict(rows, orient='index').rename_axis(['seed', 'variant'])


def report(csv) -> str:
    "The page of a `gradients.csv`: the parity table, as `parity.md` holds it"
    table = parity_table(pd.read_csv(csv)).reset_index()
    return ("# Which mel bands' PCEN gain exponent the first gradients move, by parity\n\n"
            "From `gradients.csv` (`experiments/alpha_parity.py`): per seed and variant of the initial network, of "
            "the pairs of mel bands (2j, 2j+1), how many have the even band's summed gradient with respect to "
            "`alpha` the larger (`even_larger`), and the mean gradient of the even and the odd bands.\n\n"
            "## Pairs of bands, by parity\n\n" + table.to_markdown(index=False, floatfmt='.3g') + '\n')


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seeds', default='0,1,2,3,4')
    ap.add_argument('--fold', type=int, default=1)
    ap.add_argument('--batches', type=int, default=8)
    ap.add_argument('--preset', default='frontends-cpu')
    ap.add_argument('--data', default=None, help='ESC-50 (default: $ESC50_PATH, as the study)')
    ap.add_argument('--out', required=True)
    a = ap.parse_args(argv)
    from esc50_norm.study.datasets import get_dataset
    from esc50_norm.study.presets import get_preset
    from esc50_norm.study.train import load_study_data
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    ds = get_dataset(data=a.data)
    preset = get_preset(a.preset).for_dataset(ds)
    data = load_study_data(preset, ds, device='cpu', progress=False)
    df = gradients(preset, data, a.fold, [int(s) for s in a.seeds.split(',')], a.batches)
    df.to_csv(out / 'gradients.csv', index=False, float_format='%.6g')
    (out / 'parity.md').write_text(report(out / 'gradients.csv'))
    print((out / 'parity.md').read_text())


if __name__ == '__main__':
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '1')))
    main()
