"""Every sentence of the answer says what its report's computed verdict says (README, the results page, notebook 02).

A claim is a link `[a − b: VERDICT](results/FOLDER/report.md#verdicts)`: the contrast `a - b` of that folder's verdict
table must have exactly that verdict (`results/FOLDER/with-OTHER.md#verdicts`: of the two folders pooled, `esc50-norm
report results/FOLDER --with results/OTHER`; `with-A+B.md`: of three, `--with A --with B`); or, across two folders, `[F − R on NORM: VERDICT](results/F/against-R.md#verdicts)`:
the verdict of F minus R for normalization NORM in their comparison (`esc50-norm compare results/R results/F`), and
`[F − R on a − b: VERDICT](results/F/against-R.md#how-the-contrasts-change)`: the verdict there on how contrast
`a - b` changes from R to F (F or R may be `X+P`: X's runs pooled with P's, `compare --with`, the file lying
with X or P); and `[(F − R) − (F2 − R2) on NORM: VERDICT](results/F/against-R.md#interaction)`: the
verdict on that interaction (`esc50-norm compare results/R results/F --minus results/R2 results/F2`).
A claim linking to a report's `#pairs-made-on-one-machine` is checked against the verdict on the pairs made on one
recorded machine. A sentence that calls a tie needs a claim of equivalence; one that calls a win or
a loss needs an ahead/behind claim. A signed number that opens a parenthesis right after a claim is its estimate, and the
90% CI and p-values quoted there are its report's."""
import json
import math
import re
import warnings
from functools import lru_cache
from pathlib import Path

import pytest

from esc50_norm.study.report import (compare_contrasts, compare_interactions, compare_report, compare_runs,
                                     compare_verdicts,
                                     folder_verdicts, one_machine_table, pooled_runs, pooled_verdicts, read_folder)

ROOT = Path(__file__).resolve().parents[1]
CLAIM = re.compile(r"\[([\w]+) − ([\w]+): (ahead|behind|equivalent within ±[0-9.]+|unsettled)\]"
                   r"\((?:\.\./)?results/([\w.-]+)/(?:report|with-([\w.+-]+))\.md#(verdicts|pairs-made-on-one-machine)\)")
COMPARED = re.compile(r"\[([\w.+-]+) − ([\w.+-]+) on (\w+(?: − \w+)?): (ahead|behind|equivalent within ±[0-9.]+|unsettled)\]"
                      r"\((?:\.\./)?results/([\w.-]+)/against-([\w.+-]+)\.md#(verdicts|how-the-contrasts-change)\)")
INTERACTION = re.compile(r"\[\(([\w.-]+) − ([\w.-]+)\) − \(([\w.-]+) − ([\w.-]+)\) on (\w+): "
                         r"(ahead|behind|equivalent within ±[0-9.]+|unsettled)\]"
                         r"\((?:\.\./)?results/([\w.-]+)/against-([\w.-]+)\.md#interaction\)")
TIE = re.compile(r"\b(ties?|tied|tie with|does nothing|no better than|as good as|cannot be told apart|"
                 r"does not matter|makes no difference)\b", re.I)
WIN = re.compile(r"\b(beats?|outperforms?|better than|worse than|wins? over|loses to|is ahead|is behind)\b", re.I)


NUMBERS = ['estimate', 'ci90_low', 'ci90_high', 'p', 'p_holm', 'tost_p']
_estimates = lambda t: [dict(zip(NUMBERS, r)) for r in t.reindex(columns=NUMBERS).itertuples(index=False)]


@lru_cache(maxsize=None)
def verdicts(folder: str, pooled_with: str = '', section: str = 'verdicts') -> dict:
    "The verdicts of a folder's report, or of its pooled report with others (`A+B`); or those on pairs of one machine"
    paths = [ROOT / 'results' / folder, *(ROOT / 'results' / f for f in pooled_with.split('+') if f)]
    if section == 'pairs-made-on-one-machine':
        t = one_machine_table(pooled_runs(paths)[0] if pooled_with else read_folder(paths[0])[1]).dropna(subset=['verdict'])
    else: t = pooled_verdicts(paths) if pooled_with else folder_verdicts(paths[0])
    return {c.replace(' - ', ' − '): (v, m, e) for c, v, m, e in zip(t.index, t.verdict, t.margin, _estimates(t))}


@lru_cache(maxsize=None)
def _compared(folder: str, reference: str, section: str = 'verdicts') -> dict:
    "Per normalization, (verdict, estimate) of `folder - reference`; or per contrast, of how it changes between them"
    (first, *pool), (later, *more) = ([ROOT / 'results' / r for r in f.split('+')] for f in (reference, folder))
    paths = [first, later]                              # R+P: R's runs pooled with P's (`--with`), on either side
    runs = compare_runs(paths, [*pool, *more])
    t = compare_verdicts(paths, runs=runs) if section == 'verdicts' else compare_contrasts(paths, runs=runs)
    return {n.replace(' - ', ' − '): (v, e) for (_, n), v, e in zip(t.index, t.verdict, _estimates(t))}


def compared(folder: str, reference: str, section: str = 'verdicts') -> dict:
    "Per normalization, the verdict on `folder - reference`; or per contrast, on how it changes from one to the other"
    return {n: v for n, (v, _) in _compared(folder, reference, section).items()}


@lru_cache(maxsize=None)
def _interacted(folder: str, reference: str, folder2: str, reference2: str) -> dict:
    "Per normalization, (verdict, estimate) of `(folder - reference) - (folder2 - reference2)` (`compare --minus`)"
    paths = [ROOT / 'results' / f for f in (reference, folder)]
    t = compare_interactions(paths, [ROOT / 'results' / f for f in (reference2, folder2)])
    return {n: (v, e) for (_, n), v, e in zip(t.index, t.verdict, _estimates(t))}


def interacted(folder: str, reference: str, folder2: str, reference2: str) -> dict:
    "Per normalization, the verdict on `(folder - reference) - (folder2 - reference2)` (`compare --minus`)"
    return {n: v for n, (v, _) in _interacted(folder, reference, folder2, reference2).items()}


def _lies_with(a: str, b: str, folder: str, ref: str) -> bool:
    "Whether the claim `a − b` links to its own comparison: `folder/against-b.md`, folder one of `a`'s (F+P: F or P)"
    return folder in a.split('+') and b == ref


def estimate(m: re.Match) -> dict:
    """The estimate, 90% CI and p-values behind a claim (a match of CLAIM, COMPARED or INTERACTION) as its report
    computes them (`NUMBERS`); NaN where none is"""
    none = dict.fromkeys(NUMBERS, math.nan)
    if m.re is CLAIM:
        a, b, _, folder, pooled_with, section = m.groups()
        return verdicts(folder, pooled_with or '', section).get(f"{a} − {b}", (0, 0, none))[2]
    if m.re is COMPARED:
        a, b, what, _, folder, ref, section = m.groups()
        return _compared(a, ref, section).get(what, (0, none))[1] if _lies_with(a, b, folder, ref) else none
    a, b, c, d, norm = m.groups()[:5]
    return _interacted(a, b, c, d).get(norm, (0, none))[1]


VALUE = r"(?:[+−-]\d+(?:\.\d+)?|0(?:\.0+)?)(?![\d.%]|\s*…)"     # signed (or zero), not a percentage, not a CI's start
QUOTED = re.compile(rf"\s*\(({VALUE}(?:,\s+{VALUE})*(?:,?\s+and\s+{VALUE})?)")
BOUNDS = re.compile(r"(?: points)?,\s+90% CI ([+−-]?\d+(?:\.\d+)?) … ([+−-]?\d+(?:\.\d+)?)")
P_VALUE = re.compile(r"(?:\b(Holm|TOST|ANOVA(?: by fold)?|mixed-model|fold-level)\s+)?\bp(?: =)?\s+(\d\.\d+)"
                     r"(?:,?\s+(\d\.\d+) after Holm)?")
P_COLUMN = {'Holm': 'p_holm', 'TOST': 'tost_p', 'ANOVA': None, 'ANOVA by fold': None}     # else the primary p


def _misread(number: str, value: float, scale: float = 100) -> bool:
    """Whether `number` (in points, or a p-value: `scale` 1; with 4 decimals an accuracy) is not `value` as the report
    prints it (4 decimals), at the precision the number states"""
    places = len(number.split('.')[1]) if '.' in number else 0
    scale = 1 if places == 4 else scale
    return not abs(float(number.replace('−', '-')) - round(value, 4) * scale) <= 0.5 * 10 ** -places + 1e-9   # NaN too


def _p_values(claim: re.Match, body: str) -> list:
    "The p-values a claim's parenthesis quotes (`body`, its notes in brackets left out) that are not its report's"
    bad, n = [], estimate(claim)
    for kind, p, holm in P_VALUE.findall(re.sub(r"\[[^\]]*\]", '', body)):
        col = P_COLUMN.get(kind, 'p')
        for c, v in [*([(col, p)] if col else []), *([('p_holm', holm)] if holm else [])]:
            if _misread(v, n[c], scale=1): bad.append(f"{claim.group(0)}: {c} is {n[c]:.4f}, the text says {v}")
    return bad


def misquoted(text: str) -> list:
    """The numbers that open a parenthesis right after a claim and are not its estimate, a 90% CI right after that
    number that is not its CI, and the p-values of that parenthesis (p: the primary one; `Holm p` or `..., x after
    Holm`: Holm's; `TOST p`) that are not its report's: in points, or with 4 decimals as an accuracy, as the reports
    print it; equal at the precision stated. A list of k numbers after the last of k claims gives each its own"""
    claims = sorted([*CLAIM.finditer(text), *COMPARED.finditer(text), *INTERACTION.finditer(text)], key=lambda m: m.start())
    bad = []
    for i, m in enumerate(claims):
        if not (q := QUOTED.match(text, m.end())): continue
        said = re.findall(VALUE, q.group(1))
        for number, claim in zip(said, claims[i + 1 - len(said): i + 1]):
            if _misread(number, estimate(claim)['estimate']): bad.append(f"{claim.group(0)}: the estimate is not {number}")
        if len(said) > 1: continue
        n = estimate(m)
        if (ci := BOUNDS.match(text, q.end())) and (_misread(ci[1], n['ci90_low']) or _misread(ci[2], n['ci90_high'])):
            bad.append(f"{m.group(0)}: the 90% CI is {n['ci90_low'] * 100:+.2f} … {n['ci90_high'] * 100:+.2f}, "
                       f"not {ci[1]} … {ci[2]}")
        end = min([text.find(')', q.end()) % (len(text) + 1), *[c.start() for c in claims[i + 1:i + 2]]])
        bad += _p_values(m, text[q.end():end])
    return bad


def sentences(text: str) -> list:
    "The sentences of a markdown text, each row of a table one more; headings, code and include lines left out"
    text = re.sub(r"```.*?```", ' ', text, flags=re.S)
    prose = '\n'.join(l for l in text.splitlines() if not l.startswith(('|', '#', '<!--', '    ', '![')))
    rows = [l for l in text.splitlines() if l.startswith('|') and not re.fullmatch(r"[|:\s-]+", l)]
    return [s.strip() for s in re.split(r"(?<=[.;!?])\s+(?=[A-Z*`\[(-])|\n\s*\n|\n- ", prose) if s.strip()] + rows


def check(text: str) -> list:
    "What in `text` its reports do not support: one line each (empty: every claim holds)"
    bad = []
    for s in sentences(text):
        claims = CLAIM.findall(s)
        for a, b, said, folder, pooled_with, section in claims:
            computed = verdicts(folder, pooled_with, section).get(f"{a} − {b}")
            if computed is None: bad.append(f"{folder} has no contrast {a} − {b}: {s!r}")
            elif said != computed[0]: bad.append(f"{folder} {a} − {b} is {computed[0]!r}, the text says {said!r}: {s!r}")
        across = COMPARED.findall(s)
        for a, b, norm, said, folder, ref, section in across:
            if not _lies_with(a, b, folder, ref):
                bad.append(f"the claim {a} − {b} links to {folder}/against-{ref}.md: {s!r}")
            elif said != (computed := compared(a, ref, section).get(norm, 'absent')):
                bad.append(f"{a} − {b} on {norm} is {computed!r}, the text says {said!r}: {s!r}")
        crossed = INTERACTION.findall(s)
        for a, b, c, d, norm, said, folder, ref in crossed:
            computed = interacted(a, b, c, d).get(norm, 'absent')
            if (a, b) != (folder, ref): bad.append(f"the claim ({a} − {b}) links to {folder}/against-{ref}.md: {s!r}")
            elif said != computed: bad.append(f"({a} − {b}) − ({c} − {d}) on {norm} is {computed!r}, the text says {said!r}: {s!r}")
        said = {c[2] for c in claims} | {c[3] for c in across} | {c[5] for c in crossed}
        bare = INTERACTION.sub('', COMPARED.sub('', CLAIM.sub('', s)))
        if TIE.search(bare) and not any(v.startswith('equivalent') for v in said):
            bad.append(f"a tie without an equivalence claim: {s!r}")
        if WIN.search(bare) and not said & {'ahead', 'behind'}:
            bad.append(f"a win or a loss without an ahead/behind claim: {s!r}")
    return bad


def notebook_markdown(path) -> str:
    return '\n\n'.join(''.join(c['source']) for c in json.loads(Path(path).read_text())['cells'] if c['cell_type'] == 'markdown')


ANSWERS = {'README.md': lambda: (ROOT / 'README.md').read_text(),
           'docs/results.md': lambda: (ROOT / 'docs' / 'results.md').read_text(),
           'nbs/02_results.ipynb': lambda: notebook_markdown(ROOT / 'nbs' / '02_results.ipynb')}


@pytest.mark.parametrize('name', ANSWERS)
def test_every_claim_of_the_answer_is_its_reports_verdict(name):
    text = ANSWERS[name]()
    n = len(CLAIM.findall(text))
    assert n >= (5 if name == 'README.md' else 10), f"{name} states only {n} claims as verdict links"
    assert check(text) == []


@pytest.mark.parametrize('name', ANSWERS)
def test_every_number_quoted_after_a_claim_is_its_estimate(name):
    assert misquoted(ANSWERS[name]()) == []


def test_a_misquoted_estimate_is_found_in_a_list_in_points_and_as_an_accuracy():
    "linear-cpu-epyc against mel-cpu: four claims and their four estimates (−1.9, −2.4, −3.05, −3.3 points)"
    claim = '[linear-cpu-epyc − mel-cpu on {}: behind](results/linear-cpu-epyc/against-mel-cpu.md#verdicts)'
    four = ', '.join(claim.format(n) for n in ('none', 'wave', 'global', 'channel'))
    assert misquoted(f"{four} (−1.9, −2.4, −3.05 and −3.3 points, every fold).") == []
    wrong = misquoted(f"{four} (−1.9, −2.4, −3.5 and −3.3 points).")
    assert len(wrong) == 1 and 'on global' in wrong[0] and wrong[0].endswith('the estimate is not −3.5')
    assert misquoted(f"{claim.format('none')} (−0.0187).") == [] and misquoted(f"{claim.format('none')} (−0.0190).")
    assert misquoted(f"{claim.format('none')} (90% CI −2.9 … −0.9; p 0.02).") == []    # not an estimate: not read
    ci = f"{claim.format('global')} (−3.05 points, 90% CI {{}}, every fold)."
    assert misquoted(ci.format('−4.4 … −1.7')) == []
    assert misquoted(ci.format('−4.4 … −1.2'))[0].endswith('the 90% CI is -4.44 … -1.66, not −4.4 … −1.2')


def test_a_misquoted_p_value_is_found_primary_or_holm():
    "linear-cpu-epyc − mel-cpu on global: primary p 0.0094, Holm's 0.0375 over four; notes in brackets are not read"
    claim = '[linear-cpu-epyc − mel-cpu on global: behind](results/linear-cpu-epyc/against-mel-cpu.md#verdicts)'
    n = estimate(next(COMPARED.finditer(claim)))
    assert (round(n['p'], 4), round(n['p_holm'], 4)) == (0.0094, 0.0375)
    assert misquoted(f"{claim} (−3.05 points, p = 0.009, 0.038 after Holm [p = 0.5 before]).") == []
    assert misquoted(f"{claim} (−3.05 points, Holm p = 0.04).") == []
    assert len(misquoted(f"{claim} (−3.05 points, p = 0.038).")) == 1                   # Holm's, called the primary
    assert misquoted(f"{claim} (−3.05, mixed-model p 0.009, 0.05 after Holm).")[0].endswith('the text says 0.05')
    assert misquoted(f"{claim} (−3.05, ANOVA p 0.9).") == []                       # not a verdict's p: not read
    none = '[pcen − global: unsettled](results/mel-cpu/report.md#verdicts)'        # mel-cpu has no such contrast
    assert 'the estimate is not −1.0' in misquoted(f"{none} (−1.0 points).")[0]    # a number with nothing behind it


def test_the_check_fails_when_a_sentence_claims_more_than_its_verdict():
    text = (ROOT / 'README.md').read_text()
    unsettled = '[channel − global: unsettled](results/cv-bf16/report.md#verdicts)'
    assert unsettled in text and check(text) == []
    won = check(text.replace(unsettled, '[channel − global: behind](results/cv-bf16/report.md#verdicts)'))
    assert len(won) == 1 and "is 'unsettled', the text says 'behind'" in won[0]
    tie = check(text + "\n\nOn linear input global and channel tie [channel − global: unsettled]"
                       "(results/cv-bf16/report.md#verdicts).\n")
    assert len(tie) == 1 and tie[0].startswith('a tie without an equivalence claim')
    win = check(text + "\n\nOn the strong recipe learned PCEN beats global.\n")
    assert len(win) == 1 and win[0].startswith('a win or a loss without')
    row = '| Linear STFT: per bin or global? | [channel − global: unsettled](results/cv-bf16/report.md#verdicts) (−1.5'
    assert row in text                                                    # a row of the README's table: checked too
    tie = check(text.replace(row, row.replace('per bin or global?', 'per bin and global tie')))
    assert len(tie) == 1 and tie[0].startswith('a tie without') and "per bin and global tie" in tie[0]
    assert check(text + "\n\nPer-channel statistics are as good as global "
                        "[channel − global: equivalent within ±0.01](results/mel-cpu/report.md#verdicts).\n") == []
    assert 'has no contrast' in check("[global − channel: unsettled](results/mel-cpu/report.md#verdicts).")[0]


def test_a_claim_on_pooled_folders_is_checked_against_the_pooled_verdicts():
    "global - wave over 5 folds exists only pooled: the ablation's own report holds it on fold 1"
    claim = '[global − wave: {}](results/ablation-bf16/{}.md#verdicts).'
    pooled, own = verdicts('ablation-bf16', 'cv-bf16')['global − wave'][0], verdicts('ablation-bf16')['global − wave'][0]
    assert pooled != own                        # the pooled verdict is not the folder's own: the check reads the right one
    assert check(claim.format(pooled, 'with-cv-bf16')) == [] and check(claim.format(own, 'report')) == []
    assert "the text says" in check(claim.format(own, 'with-cv-bf16'))[0]


@pytest.mark.parametrize('path', sorted((ROOT / 'results').glob('*/against-*.md')), ids=lambda p: p.parent.name)
def test_committed_comparisons_are_what_compare_writes_now(path, monkeypatch):
    """results/F/against-R.md is `esc50-norm compare results/R results/F --out ...`, as its title names the folders
    (R + P: `--with results/P`, on either side, the file lying with F or its pool; `--minus R2 F2`: ", minus F2 - R2")"""
    monkeypatch.chdir(ROOT)
    title = path.read_text().split('\n', 1)[0]
    m = re.fullmatch(r"# Comparison of (.+?)(?:, minus (\S+) - (\S+))?", title)
    sides = [[Path(f) for f in side.split(' + ')] for side in m[1].split(', ')]
    (first, *pool), (later, *more) = sides
    assert len(sides) == 2 and path.parent.name in [f.name for f in (later, *more)]
    assert path.stem == 'against-' + '+'.join(f.name for f in (first, *pool))
    folders, minus = [first, later], [Path(m[3]), Path(m[2])] if m[2] else []
    with warnings.catch_warnings():             # 'comparing unlike results': the point of most comparisons
        warnings.simplefilter('ignore')
        text = compare_report(folders, compare_runs(folders, [*pool, *more]), minus=minus)
    assert path.read_text() == f"{title}\n\n{text}"


def test_a_claim_across_folders_is_checked_against_their_comparison():
    ok = '[linear-cpu − mel-cpu on global: {}](results/linear-cpu/against-mel-cpu.md#verdicts).'
    right = compared('linear-cpu', 'mel-cpu')['global']
    wrong = next(v for v in ('ahead', 'behind', 'unsettled') if v != right)
    assert check(ok.format(right)) == [] and "the text says" in check(ok.format(wrong))[0]
    assert 'links to' in check('[linear-cpu − mel-cpu on global: unsettled](results/mel-cpu/against-linear-cpu.md#verdicts).')[0]


def test_a_claim_on_how_a_contrast_changes_is_checked_against_that_verdict():
    "linear-cpu against mel-cpu: the change of channel - global is its own verdict, not the normalization's"
    ok = '[linear-cpu − mel-cpu on channel − global: {}](results/linear-cpu/against-mel-cpu.md#how-the-contrasts-change).'
    right = compared('linear-cpu', 'mel-cpu', 'how-the-contrasts-change')['channel − global']
    wrong = next(v for v in ('ahead', 'behind', 'unsettled') if v != right)
    assert check(ok.format(right)) == [] and "the text says" in check(ok.format(wrong))[0]
    absent = ok.replace('channel − global', 'minmax − global').format(right)      # linear-cpu has no minmax arm
    assert "is 'absent'" in check(absent)[0]


def test_a_claim_against_a_pooled_reference_is_checked_against_the_pooled_comparison():
    "mel-cpu ran bn_freq apart: only mel-cpu pooled with mel-cpu-bn-freq holds bn_freq - global, so only it has a verdict"
    ok = ('[frontends-cpu − mel-cpu+mel-cpu-bn-freq on bn_freq − global: {}]'
          '(results/frontends-cpu/against-mel-cpu+mel-cpu-bn-freq.md#how-the-contrasts-change).')
    right = compared('frontends-cpu', 'mel-cpu+mel-cpu-bn-freq', 'how-the-contrasts-change')['bn_freq − global']
    wrong = next(v for v in ('ahead', 'behind', 'unsettled') if v != right)
    assert check(ok.format(right)) == [] and "the text says" in check(ok.format(wrong))[0]
    alone = ok.replace('mel-cpu+mel-cpu-bn-freq', 'mel-cpu').format(right)
    assert "is 'absent'" in check(alone)[0]


def test_a_claim_on_a_pooled_folder_is_checked_against_its_comparison_and_lies_with_one_of_its_folders():
    """F+P − R: the later folder pooled with its arms run apart (here mel-cpu with bn_freq, against mel-aug-cpu); the
    file may lie in F's folder or P's, not in another; the verdict is the pooled comparison's"""
    ok = ('[mel-cpu+mel-cpu-bn-freq − mel-aug-cpu on global: {}]'
          '(results/mel-cpu-bn-freq/against-mel-aug-cpu.md#verdicts).')
    right = compared('mel-cpu+mel-cpu-bn-freq', 'mel-aug-cpu')
    assert set(right) == {'global', 'instance'} and right['global'] == compared('mel-cpu', 'mel-aug-cpu')['global']
    wrong = next(v for v in ('ahead', 'behind', 'unsettled') if v != right['global'])
    assert check(ok.format(right['global'])) == [] and "the text says" in check(ok.format(wrong))[0]
    assert check(ok.replace('results/mel-cpu-bn-freq/', 'results/mel-cpu/').format(right['global'])) == []
    assert "links to linear-cpu/against-mel-aug-cpu.md" in check(
        ok.replace('results/mel-cpu-bn-freq/', 'results/linear-cpu/').format(right['global']))[0]


def test_a_claim_on_an_interaction_is_checked_against_that_verdict():
    "(F − R) − (F2 − R2): recomputed from the four folders the claim names; a link to another folder's file fails"
    ok = ('[(mel-aug-cpu − mel-cpu) − (linear-cpu-epyc − linear-cpu) on {}: {}]'
          '(results/mel-aug-cpu/against-mel-cpu.md#interaction).')
    right = interacted('mel-aug-cpu', 'mel-cpu', 'linear-cpu-epyc', 'linear-cpu')
    assert set(right) == {'global'}                         # the one normalization all four folders hold
    wrong = next(v for v in ('ahead', 'behind', 'unsettled') if v != right['global'])
    assert check(ok.format('global', right['global'])) == []
    assert "the text says" in check(ok.format('global', wrong))[0]
    assert "is 'absent'" in check(ok.format('instance', 'unsettled'))[0]
    assert 'links to' in check(ok.format('global', right['global']).replace('results/mel-aug-cpu/', 'results/mel-cpu/'))[0]
    assert right['global'] == 'behind'                     # so it carries a loss: "worse than" needs no other claim
    assert check(f"Here the change does worse than there {ok.format('global', 'behind')}") == []


def test_a_claim_on_the_pairs_of_one_machine_is_checked_against_their_verdict():
    "frontends-cpu's bn_freq - global: unsettled on all pairs and on one machine; a claim of 'ahead' there fails"
    claim = '[bn_freq − global: {}](results/frontends-cpu/report.md#pairs-made-on-one-machine).'
    assert verdicts('frontends-cpu', '', 'pairs-made-on-one-machine')['bn_freq − global'][0] == 'unsettled'
    assert check(claim.format('unsettled')) == [] and "the text says 'ahead'" in check(claim.format('ahead'))[0]
    none = '[channel − global: unsettled](results/frontends-cpu/report.md#pairs-made-on-one-machine).'
    assert 'has no contrast' in check(none)[0]                 # no pair of it was made on one recorded machine
