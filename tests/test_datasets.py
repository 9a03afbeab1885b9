"Datasets: every kind on generated collections (metadata, folds, paths, fingerprints, specs, durations), and every validation error"
import json
import pickle
import shutil
from pathlib import Path
import warnings

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from esc50_norm.study.datasets import (KINDS, ClassFolders, Dataset, DatasetError, check_folds, class_balance, clip_duration, clip_info,
                                       fold_split, get_dataset, stratified_folds, subset_per_class, summary)
from esc50_norm.study.esc50 import ESC50Error
from fake_collections import make_csv, make_esc50, make_folders, make_urbansound8k, write_clip

COUNTS = {'a': 7, 'b': 5, 'c': 6}
BY_HAND = {'a': {1: 3, 2: 2, 3: 2}, 'b': {1: 1, 2: 2, 3: 2}, 'c': {1: 2, 2: 2, 3: 2}}
"""COUNTS dealt round-robin over 3 folds in class order, each class going on where the previous stopped:
a takes slots 0-6 (folds 1,2,3,1,2,3,1), b slots 7-11 (2,3,1,2,3), c slots 12-17 (1,2,3,1,2,3)"""


@pytest.fixture(scope='module')
def made(tmp_path_factory):
    "One generated collection of every kind (not to be changed by tests)"
    d = tmp_path_factory.mktemp('collections')
    return dict(esc50=make_esc50(d / 'ESC-50'), us8k=make_urbansound8k(d / 'UrbanSound8K'),
                folders=make_folders(d / 'sounds', COUNTS), csv=make_csv(d / 'table' / 'clips.csv', {'x': 6, 'y': 6, 'z': 3}))


def per_class_fold(df) -> dict:
    return {c: dict(row[row > 0]) for c, row in pd.crosstab(df.label, df.fold).iterrows()}


def assert_paths_exist(ds, df):
    assert all(ds.path(f).is_file() for f in df.file)


def test_every_kind_follows_the_protocol(made):
    members = [m for m in vars(Dataset) if not m.startswith('_')] + list(Dataset.__annotations__)
    datasets = [get_dataset(made['esc50'], full=False), get_dataset('esc10', made['esc50'], full=False), get_dataset(made['us8k']),
                get_dataset(made['csv'], columns='file=path,label=category,fold=split'), get_dataset(made['folders'], k_folds=3)]
    assert [d.kind for d in datasets] == list(KINDS)
    for ds in datasets:
        assert all(hasattr(ds, m) for m in members), ds
        d = ds.describe()
        assert json.loads(json.dumps(d)) == d and d['clips'] == len(ds.meta()) and d['classes'] == len(ds.classes)
        assert pickle.loads(pickle.dumps(ds)).describe() == d                     # it travels to worker processes


def test_esc50_kind_keeps_the_native_columns(made):
    ds = get_dataset('esc50', data=made['esc50'], full=False)
    df, native = ds.meta(), pd.read_csv(made['esc50'] / 'meta' / 'esc50.csv')
    assert list(df.columns[:3]) == ['file', 'label', 'fold'] and {'filename', 'category', 'target', 'esc10'} <= set(df.columns)
    assert df.file.tolist() == native.filename.tolist() and df.label.tolist() == native.category.tolist()
    assert ds.folds == (1, 2, 3, 4, 5) and ds.classes == ('chirp', 'dog', 'rain', 'siren') and ds.duration == 5.0 and len(df) == 40
    assert ds.root == made['esc50'] and ds.path(df.file[0]) == made['esc50'] / 'audio' / df.file[0]
    assert_paths_exist(ds, df)
    with pytest.raises(ESC50Error, match='has 40 rows, ESC-50 has 2000'): get_dataset('esc50', made['esc50']).meta()


def test_esc10_is_the_marked_classes_of_the_same_folder(made):
    ds = get_dataset('esc10', made['esc50'], full=False)
    df = ds.meta()
    native = pd.read_csv(made['esc50'] / 'meta' / 'esc50.csv')
    assert set(df.file) == set(native.filename[native.esc10]) and ds.classes == ('dog', 'rain')
    assert ds.folds == (1, 2, 3, 4, 5) and df.groupby('fold').size().eq(4).all() and ds.name == 'esc10'
    assert_paths_exist(ds, df)
    with pytest.raises(ESC50Error, match=r'ESC-10 has 400 clips, 10 classes of 40; these esc10 rows have 20 clips, 2 classes'):
        get_dataset('esc10', made['esc50']).meta()


def test_urbansound8k_kind(made):
    ds = get_dataset(f"urbansound8k:{made['us8k']}")
    df, native = ds.meta(), pd.read_csv(made['us8k'] / 'metadata' / 'UrbanSound8K.csv')
    assert df.file.tolist() == [f"fold{k}/{n}" for k, n in zip(native.fold, native.slice_file_name)]
    assert df.label.tolist() == native['class'].tolist() and df.fold.tolist() == native.fold.tolist()
    assert {'classID', 'fsID', 'slice_file_name'} <= set(df.columns) and ds.name == 'UrbanSound8K' and ds.duration is None
    assert ds.folds == tuple(range(1, 11)) and ds.classes == ('dog', 'rain', 'siren')
    assert ds.path(df.file[0]) == made['us8k'] / 'audio' / 'fold1' / native.slice_file_name[0]
    assert_paths_exist(ds, df)


def test_csv_kind_with_its_own_folds(made):
    ds = get_dataset(f"csv:{made['csv']}", columns=dict(file='path', label='category', fold='split'))
    df, native = ds.meta(), pd.read_csv(made['csv'])
    assert df.file.tolist() == native.path.tolist() and df.label.tolist() == native.category.tolist()
    assert df.fold.tolist() == native.split.tolist() and df.note.tolist() == native.note.tolist()
    assert ds.folds == (1, 2, 3) and ds.name == 'clips' and ds.root == made['csv'].parent
    assert ds.describe()['columns'] == dict(file='path', label='category', fold='split') and 'k' not in ds.describe()
    assert_paths_exist(ds, df)


def test_csv_kind_without_folds_gets_stratified_ones(tmp_path):
    csv = make_csv(tmp_path / 'list.csv', COUNTS, folds=None, columns=('file', 'label', None))
    ds = get_dataset(csv, k_folds=3)
    assert per_class_fold(ds.meta()) == BY_HAND and ds.folds == (1, 2, 3)
    assert ds.describe()['k'] == 3 and ds.describe()['seed'] == 0 and ds.describe()['columns'] == dict(file='file', label='label')


def test_csv_paths_may_be_absolute(made, tmp_path):
    native = pd.read_csv(made['csv'])
    native['path'] = [str(made['csv'].parent / p) for p in native.path]
    native.to_csv(tmp_path / 'abs.csv', index=False)
    ds = get_dataset(tmp_path / 'abs.csv', columns='file=path,label=category,fold=split')
    assert ds.path(ds.meta().file[0]) == made['csv'].parent / 'clips' / 'x' / '000.wav'
    assert_paths_exist(ds, ds.meta())


def test_folders_kind_makes_stratified_seeded_folds(made):
    ds = get_dataset(made['folders'], k_folds=3)
    df = ds.meta()
    assert ds.kind == 'folders' and ds.name == 'sounds' and ds.classes == ('a', 'b', 'c') and ds.folds == (1, 2, 3)
    assert per_class_fold(df) == BY_HAND and df.groupby('fold').size().tolist() == [6, 6, 6]
    assert sorted(df.file) == sorted(p.relative_to(made['folders']).as_posix() for p in made['folders'].rglob('*.*'))
    assert (df.label == df.file.str.split('/').str[0]).all()
    assert_paths_exist(ds, df)
    again, other = ClassFolders(made['folders'], 3, 0).meta(), ClassFolders(made['folders'], 3, 1).meta()
    assert again.equals(df)                                                        # deterministic
    assert per_class_fold(other) == BY_HAND and not other.fold.equals(df.fold)      # another seed: other clips, same counts
    assert ds.describe()['k'] == 3 and ds.describe()['seed'] == 0
    five = get_dataset(made['folders']).meta()                                      # the default k=5: classes over 5 folds
    assert all(max(c.values()) - min(c.values()) <= 1 and len(c) == 5 for c in per_class_fold(five).values())


def test_stratified_folds_by_hand():
    labels = ['b'] * 2 + ['a'] * 3
    folds = stratified_folds(labels, 2, seed=0, files=['q', 'p', 'z', 'x', 'y'])
    assert sorted(folds[2:]) == [1, 1, 2] and sorted(folds[:2]) == [1, 2]      # a: slots 0-2 -> 1,2,1; b: slots 3-4 -> 2,1
    assert (stratified_folds(labels, 2, 0, ['q', 'p', 'z', 'x', 'y']) == folds).all()
    # each class goes on where the previous one stopped: a fills slots 0-2 (1, 2, 1), so b's one clip is fold 2
    went_on = stratified_folds(['a'] * 3 + ['b'], 2, seed=0)
    assert sorted(went_on[:3]) == [1, 1, 2] and went_on[3] == 2
    # the folds follow the files, not the rows' order: the same file -> fold for the rows shuffled
    files = ['q', 'p', 'z', 'x', 'y']
    perm = [3, 0, 4, 2, 1]
    shuffled = stratified_folds([labels[i] for i in perm], 2, 0, [files[i] for i in perm])
    assert dict(zip([files[i] for i in perm], shuffled)) == dict(zip(files, folds))


def test_fewer_clips_than_folds_is_named(made):
    with pytest.raises(DatasetError, match=r"classes with fewer clips than the 6 folds: \{'b': 5\}.*"
                                           r"use --k-folds 5 or fewer \(k_folds=5 in Python\)"):
        get_dataset(made['folders'], k_folds=6).meta()
    with pytest.raises(DatasetError, match='k_folds must be an integer of at least 2'): get_dataset(made['folders'], k_folds=1).meta()


def test_a_class_of_one_clip_is_named_with_a_fix_that_works(made, tmp_path):
    "No number of folds gives a single clip a fold to train on and one to validate on: --k-folds is not offered"
    root = Path(shutil.copytree(made['folders'], tmp_path / 'mine'))
    clip = next(root.rglob('*.wav'))
    (root / 'rare').mkdir()
    shutil.copy(clip, root / 'rare' / 'r.wav')
    with pytest.raises(DatasetError, match=r"classes with a single clip: \{'rare': 1\}; .*add clips, or leave it out") as e:
        get_dataset(root, k_folds=2).meta()
    assert '--k-folds' not in str(e.value)


def test_fingerprint_same_for_copies_different_for_subsets_and_seeds(made, tmp_path):
    for key, kw in (('esc50', dict(full=False)), ('us8k', {}), ('folders', {})):
        copy = shutil.copytree(made[key], tmp_path / key / made[key].name)
        assert get_dataset(copy, **kw).fingerprint() == get_dataset(made[key], **kw).fingerprint(), key
    ds = get_dataset(made['folders'])
    assert get_dataset(made['folders'], fold_seed=1).fingerprint() != ds.fingerprint()
    shutil.rmtree(tmp_path / 'folders' / 'sounds' / 'c')
    assert get_dataset(tmp_path / 'folders' / 'sounds').fingerprint() != ds.fingerprint()
    cols = 'file=path,label=category,fold=split'
    native = pd.read_csv(made['csv'])
    native.iloc[1:].to_csv(made['csv'].parent / 'fewer.csv', index=False)
    native.assign(split=native.split.map({1: 2, 2: 1, 3: 3})).to_csv(made['csv'].parent / 'swapped.csv', index=False)
    prints = {n: get_dataset(made['csv'].parent / n, columns=cols).fingerprint() for n in ('clips.csv', 'fewer.csv', 'swapped.csv')}
    assert len(set(prints.values())) == 3 and all(len(p) == 12 for p in prints.values())
    assert get_dataset('esc10', made['esc50'], full=False).fingerprint() != get_dataset(made['esc50'], full=False).fingerprint()


def test_specs_are_recognised(made, tmp_path, monkeypatch):
    monkeypatch.setenv('ESC50_PATH', str(made['esc50']))
    cases = {None: ('esc50', made['esc50']), 'esc50': ('esc50', made['esc50']), 'ESC10': ('esc10', made['esc50']),
             str(made['esc50']): ('esc50', made['esc50']), f"esc10:{made['esc50']}": ('esc10', made['esc50']),
             str(made['us8k']): ('urbansound8k', made['us8k']), str(made['folders']): ('folders', made['folders']),
             f"folders:{made['esc50']}": ('folders', made['esc50']), str(made['csv']): ('csv', made['csv'].parent)}
    for spec, (kind, root) in cases.items():
        ds = get_dataset(spec, **(dict(full=False) if kind in ('esc50', 'esc10') else {}))
        assert (ds.kind, ds.root) == (kind, root), spec
    assert get_dataset('urbansound8k', data=made['us8k']).kind == 'urbansound8k'
    assert repr(get_dataset('esc50', data=made['us8k'] / 'nowhere')).endswith("nowhere')")     # nothing read yet
    assert get_dataset('esc50').folds == (1, 2, 3, 4, 5) and get_dataset('urbansound8k', data='/nowhere').folds == tuple(range(1, 11))


@pytest.mark.parametrize('spec,kw,message', [
    ('mp3:/x', {}, r"unknown dataset kind 'mp3' in 'mp3:/x'; kinds: esc50, esc10, urbansound8k, csv, folders"),
    ('nowhere', {}, r"dataset 'nowhere' is neither a kind \(esc50, esc10, urbansound8k, csv, folders\) nor an existing path"),
    ('folders', {}, r"dataset kind 'folders' needs a path"),
    ('csv:', {}, r"names no path after 'csv:'"),
    ('esc50', dict(k_folds=3), r"k_folds do not apply to esc50 datasets \(their folds are fixed: 1-5\)"),
    ('urbansound8k:/x', dict(columns='file=a,label=b'), r"columns do not apply to urbansound8k datasets"),
])
def test_bad_specs_name_the_spec_and_the_kinds(spec, kw, message):
    with pytest.raises(DatasetError, match=message): get_dataset(spec, **kw)


def test_unrecognisable_path_and_doubled_paths(made, tmp_path):
    (tmp_path / 'notes.txt').write_text('hi')
    with pytest.raises(DatasetError, match=r"notes\.txt is not a dataset: a folder or a \.csv file is \(kinds: esc50"):
        get_dataset(tmp_path / 'notes.txt')
    with pytest.raises(DatasetError, match="is a path; do not give data="): get_dataset(made['us8k'], data=made['us8k'])
    with pytest.raises(DatasetError, match="names its path; do not give data="): get_dataset(f"folders:{made['us8k']}", data='x')


def test_duration_is_fixed_given_or_the_99th_percentile_of_the_headers(made):
    ds, logs = get_dataset(made['folders']), []
    files = sorted(p for p in made['folders'].rglob('*') if p.is_file())
    durations = [sf.info(p).duration for p in files]
    length = np.quantile(durations, 0.99, method='higher')
    assert clip_duration(ds, log=logs.append) == pytest.approx(length, rel=1e-12) and length == max(durations)   # 18 clips
    assert len(set(durations)) > 10 and f"cropped/padded to {length:.3f} s, the 99th percentile of its 18 clips" in logs[0]
    info = clip_info(ds).set_index('file')
    for p in files[:5]:
        i = sf.info(p)
        f = p.relative_to(made['folders']).as_posix()
        assert (info.loc[f, 'sr'], info.loc[f, 'channels'], info.loc[f, 'frames']) == (i.samplerate, i.channels, i.frames)
    assert set(info.sr) == {8000, 16000, 22050} and set(info.channels) == {1, 2}
    assert clip_duration(ds, given=2.5) == 2.5 and clip_duration(get_dataset(made['esc50'], full=False), log=None) == 5.0


def test_summary_and_balance_report_the_counts(made):
    ds = get_dataset(made['us8k'])
    text = summary(ds)                                   # durations, rates and channels: the clip cache's `report()`
    assert text.startswith(f"UrbanSound8K (urbansound8k, {made['us8k']}): 30 clips, 3 classes, 10 folds of 3 clips; fingerprint ")
    assert text.splitlines()[1] == 'clips per class and fold: 1-1' and len(text.splitlines()) == 2
    assert class_balance(ds.meta()) == ('clips per class and fold: 1-1', False)


def test_strong_imbalance_is_warned_about(tmp_path):
    csv = make_csv(tmp_path / 'odd.csv', {'big': 16, 'small': 4}, folds=2, columns=('file', 'label', 'fold'))
    with pytest.warns(UserWarning, match=r"odd\.csv: strongly imbalanced classes; clips per class and fold: 2-8 "
                                         r"\(fewest: small in fold 1; most: big in fold 1\)"):
        get_dataset(csv).meta()
    text, strong = class_balance(pd.DataFrame(dict(label=['a'] * 3 + ['b'], fold=[1, 2, 2, 1])))
    assert strong and text == 'clips per class and fold: 0-2 (fewest: b in fold 2; most: a in fold 2); 1 class-fold pairs have no clip'
    assert class_balance(pd.DataFrame(dict(label=['a'] * 3 + ['b'] * 2, fold=[1, 2, 2, 1, 2])))[1] is False
    csv = make_csv(tmp_path / 'even.csv', {'big': 6, 'small': 4}, folds=2, columns=('file', 'label', 'fold'))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        get_dataset(csv).meta()


def test_fold_split_and_subset_on_standard_columns(made):
    df = get_dataset(made['us8k']).meta()
    train, valid = fold_split(df, 3)
    assert valid == list(np.flatnonzero(df.fold == 3)) and sorted(train + valid) == list(range(len(df)))
    assert fold_split(df, 0) == (list(range(len(df))), [])
    with pytest.raises(DatasetError, match=r"fold 11 does not exist; this data has folds \[1, 2, 3, 4, 5, 6, 7, 8, 9, 10\]"):
        fold_split(df, 11)
    big = get_dataset(made['esc50'], full=False).meta()
    sub = subset_per_class(big, 1)
    assert len(sub) == 5 * 4 and sub.groupby(['fold', 'label']).size().eq(1).all() and subset_per_class(big, None) is big
    assert sub.file.tolist() == big.drop_duplicates(['fold', 'label']).file.tolist()


def test_requested_folds_are_checked_without_reading(made):
    assert check_folds(get_dataset('esc50', '/nowhere')) == (1, 2, 3, 4, 5)
    assert check_folds(get_dataset(made['us8k']), [10, 2]) == (10, 2)
    with pytest.raises(DatasetError, match=r"fold\(s\) \[6, 7\] do not exist in esc10; its folds are 1-5"):
        check_folds(get_dataset('esc10', '/nowhere'), (1, 6, 7))
    with pytest.raises(DatasetError, match=r"fold\(s\) \[4\] do not exist in nowhere; its folds are 1-3"):
        check_folds(ClassFolders('/nowhere', 3), (4,))


# ---- validation: every error names the file and the offending values


def test_missing_and_unreadable_files_are_counted_and_named(made, tmp_path):
    root = shutil.copytree(made['us8k'], tmp_path / 'us')
    for f in ('fold2/200-0-0-0.wav', 'fold7/710-1-0-0.wav'): (root / 'audio' / f).unlink()
    with pytest.raises(DatasetError, match=r"2 of 30 clips listed in .*us/metadata/UrbanSound8K\.csv are missing from .*us/audio: "
                                           r"\['fold2/200-0-0-0\.wav', 'fold7/710-1-0-0\.wav'\]"):
        get_dataset(root).meta()
    (root / 'audio' / 'fold2' / '200-0-0-0.wav').mkdir()
    write_clip(root / 'audio' / 'fold7' / '710-1-0-0.wav', 0.1, 8000)
    with pytest.raises(DatasetError, match=r"1 clips listed in .*UrbanSound8K\.csv cannot be read under .*: \['fold2/200-0-0-0\.wav \(not a file\)'\]"):
        get_dataset(root).meta()
    (root / 'audio' / 'fold2' / '200-0-0-0.wav').rmdir()
    (root / 'audio' / 'fold2' / '200-0-0-0.wav').write_bytes(b'garbage, not audio')
    ds = get_dataset(root)
    ds.meta()                                                          # present and readable: headers are read by clip_info
    with pytest.raises(DatasetError, match=r"1 clip of UrbanSound8K is not readable audio: \['fold2/200-0-0-0\.wav \(Format not recognised\.\)'\]"):
        clip_info(ds)


@pytest.mark.parametrize('content,said', [(b'', r"is empty: a CSV with a header row is needed"),
                                          (bytes(range(256)) * 8, r"is not a readable CSV \((UnicodeDecodeError|ParserError)")])
def test_empty_or_binary_csv_is_named(made, tmp_path, content, said):
    (tmp_path / 'bad.csv').write_bytes(content)
    with pytest.raises(DatasetError, match=rf"bad\.csv {said}"): get_dataset(tmp_path / 'bad.csv').meta()
    root = shutil.copytree(made['us8k'], tmp_path / 'us')
    (root / 'metadata' / 'UrbanSound8K.csv').write_bytes(content)
    with pytest.raises(DatasetError, match=rf"UrbanSound8K\.csv {said}"): get_dataset(root).meta()


def csv_of(tmp_path, made, change) -> str:
    "The generated CSV collection with `change` applied to its frame, written beside it"
    df = pd.read_csv(made['csv'])
    out = made['csv'].parent / f"{tmp_path.name}.csv"
    change(df).to_csv(out, index=False)
    return out


COLS = dict(file='path', label='category', fold='split')


@pytest.mark.parametrize('change,message', [
    (lambda df: df.drop(columns='category'), r"lacks columns \['category'\] \(it has \['path', 'split', 'note'\]\)"),
    (lambda df: df.assign(split=['x', '1.5', *df.split[2:]]), r"the fold of 2 rows is not an integer: \['x', '1\.5'\]"),
    (lambda df: df.assign(split=df.split.where(df.split != 2, 4)), r"fold\(s\) \[2\] of 1-4 have no clips"),
    (lambda df: df.assign(split=df.split - 1), r"has folds \[0\]: folds are numbered from 1 \(0 means 'no validation fold'\)"),
    (lambda df: df.assign(category=df.category.where(df.index != 0, 'lonely')), r"1 labels have a single clip.*\['lonely'\]"),
    (lambda df: df.assign(category='dog'), r"has one label only \('dog', \d+ clips\): a classifier needs clips of at least 2"),
    (lambda df: df.assign(category=df.category.where(df.index != 3)), r"1 rows have no label: \['clips/x/003\.wav'\]"),
    (lambda df: df.assign(path=df.path.where(df.index != 2)), r"1 rows have no file: data rows \[2\] \(from 0\)"),
    (lambda df: pd.concat([df, df.iloc[[4]]]), r"lists 1 files more than once: \['clips/x/004\.wav'\]"),
    (lambda df: df.iloc[:0], r"has no rows \(columns: \['path', 'category', 'split', 'note'\]\)"),
])
def test_bad_metadata_is_named(made, tmp_path, change, message):
    csv = csv_of(tmp_path, made, change)
    with pytest.raises(DatasetError, match=f"{csv.name}.*{message}"): get_dataset(csv, columns=COLS).meta()


def test_csv_columns_are_checked(made, tmp_path):
    with pytest.raises(DatasetError, match=r"clips\.csv lacks columns \['file', 'label'\] .*name them with "
                                           r"--columns file=\.\.\.,label=\.\.\.,fold=\.\.\. \(columns=dict"):
        get_dataset(made['csv']).meta()
    with pytest.raises(DatasetError, match=r"needs file and label \(fold optional\); missing \['label'\]"): get_dataset(made['csv'], columns='file=path')
    with pytest.raises(DatasetError, match=r"unknown \['split'\]"): get_dataset(made['csv'], columns=dict(file='a', label='b', split='c'))
    with pytest.raises(DatasetError, match=r"'file=path,label=category,label=split': label given more than once"):
        get_dataset(made['csv'], columns='file=path,label=category,label=split')
    with pytest.raises(DatasetError, match=r"the column 'path' is named for two roles"):
        get_dataset(made['csv'], columns='file=path,label=path')


def test_labels_that_differ_only_in_case_or_spaces_are_warned_about(made, tmp_path):
    "Three classes renamed 'x', 'X' and 'x ' stay three (as the user wrote them), with a warning that names them"
    first, second, third = sorted(pd.read_csv(made['csv']).category.unique())[:3]
    csv = csv_of(tmp_path, made, lambda df: df.assign(category=df.category.replace({second: first.upper(),
                                                                                    third: first + ' '})))
    with pytest.warns(UserWarning, match=rf"1 set of labels differ only in case or spaces and are kept as separate "
                                         rf"classes: \[\['{first.upper()}', '{first}', '{first} '\]\]"):
        ds = get_dataset(csv, columns=COLS)
        ds.meta()
    assert len(ds.classes) == pd.read_csv(made['csv']).category.nunique()
    with pytest.raises(DatasetError, match=r"has its own folds \(column 'split'\); k_folds and fold_seed apply only"):
        get_dataset(made['csv'], columns=COLS, k_folds=3).meta()


def test_fixed_folds_must_all_have_clips_and_no_others(made, tmp_path):
    root = make_urbansound8k(tmp_path / 'us', folds=range(1, 10))
    with pytest.raises(DatasetError, match=r"UrbanSound8K\.csv: fold\(s\) \[10\] of 1-10 have no clips"): get_dataset(root).meta()
    meta = pd.read_csv(root / 'metadata' / 'UrbanSound8K.csv')
    meta.assign(fold=meta.fold.replace(9, 12)).to_csv(root / 'metadata' / 'UrbanSound8K.csv', index=False)
    with pytest.raises(DatasetError, match=r"UrbanSound8K\.csv has folds \[12\]; this dataset's folds are 1-10"): get_dataset(root).meta()
    esc = shutil.copytree(made['esc50'], tmp_path / 'esc')
    meta = pd.read_csv(esc / 'meta' / 'esc50.csv')
    meta[meta.fold != 3].to_csv(esc / 'meta' / 'esc50.csv', index=False)
    with pytest.raises(DatasetError, match=r"esc/meta/esc50\.csv: fold\(s\) \[3\] of 1-5 have no clips"): get_dataset(esc, full=False).meta()


def test_folders_without_audio_are_named(tmp_path):
    (tmp_path / 'empty' / 'a').mkdir(parents=True)
    (tmp_path / 'empty' / 'a' / 'readme.txt').write_text('x')
    with pytest.raises(DatasetError, match=r"empty holds no class folders with audio \(wav, flac, ogg, mp3, aiff, aif\)"):
        get_dataset(tmp_path / 'empty').meta()
    root = make_folders(tmp_path / 'tree', {'a': 3, 'b': 3})
    write_clip(root / 'stray.wav', 0.1, 8000)
    write_clip(root / 'a' / 'deeper' / 'x.aiff', 0.1, 8000)
    (root / 'a' / 'notes.txt').write_text('not audio')
    with pytest.warns(UserWarning, match=r"1 audio files lie outside any class folder and are left out: \['stray\.wav'\]"):
        df = get_dataset(root, k_folds=2).meta()
    assert 'a/deeper/x.aiff' in set(df.file) and len(df) == 7


@pytest.mark.slow
def test_esc10_on_the_real_copy(shared_esc50):
    ds = get_dataset('esc10', data=shared_esc50)
    df, native = ds.meta(), pd.read_csv(shared_esc50 / 'meta' / 'esc50.csv')
    assert len(df) == 400 and len(ds.classes) == 10 and ds.folds == (1, 2, 3, 4, 5)
    assert df.groupby('fold').size().tolist() == [80] * 5 and df.groupby('label').size().eq(40).all()
    assert set(ds.classes) == set(native.category[native.esc10]) and set(df.file) == set(native.filename[native.esc10])
    assert get_dataset(shared_esc50).describe()['clips'] == 2000


@pytest.mark.parametrize('kind', ['folders', 'csv', 'urbansound8k'])
def test_a_study_runs_on_each_kind_through_the_command_line(kind, tmp_path, capsys):
    "The whole path on a collection that is not ESC-50: folds and classes from the data, clips cropped/padded to their 99th percentile"
    from esc50_norm.study.cli import main as cli
    from fake_collections import make_csv, make_folders, make_urbansound8k
    counts = dict(dog=6, rain=6, siren=6)
    spec, extra = {'folders': (f"folders:{make_folders(tmp_path / 'tree', counts)}", ['--k-folds', '3']),
                   'csv': (str(make_csv(tmp_path / 'c' / 'labels.csv', counts)), ['--columns', 'file=path,label=category,fold=split']),
                   'urbansound8k': (str(make_urbansound8k(tmp_path / 'us8k', folds=range(1, 11))), [])}[kind]
    ds_args = ['--dataset', spec, *extra, '--cache-dir', str(tmp_path / 'cache')]
    out = tmp_path / 'res'
    with warnings.catch_warnings(): warnings.simplefilter('ignore'); rc = cli(['study', '--preset', 'smoke', '--folds', '1', '--normalizations',
                                                                                'none,global', '--bs', '2', '--out', str(out), '--device', 'cpu',
                                                                                '--no-report', *ds_args])
    assert rc == 0, capsys.readouterr()
    ds = get_dataset(spec, **({'k_folds': 3} if kind == 'folders' else {'columns': 'file=path,label=category,fold=split'} if kind == 'csv' else {}))
    info = clip_info(ds)
    length = np.quantile(info.duration, 0.99, method='higher')
    assert f"clips are cropped/padded to {length:.3f} s, the 99th percentile of its {len(info)} clips" in capsys.readouterr().out
    recorded = json.loads((out / 'preset.json').read_text())
    assert (recorded['dataset']['kind'], recorded['dataset']['fingerprint']) == (kind, ds.fingerprint())
    assert recorded['duration'] == pytest.approx(length)
    rows = [json.loads((out / 'runs' / f"fold1-{n}-seed0.json").read_text()) for n in ('none', 'global')]
    assert all(r['dataset_kind'] == kind and r['n_valid'] == len(ds.classes) for r in rows)      # smoke: 1 clip per class and fold
    assert cli(['report', str(out), *ds_args]) == 0                       # the folder's data, checked by fingerprint
    assert cli(['report', str(out), '--dataset', 'esc50', '--data', str(tmp_path / 'nowhere')]) == 2


def test_a_class_folder_symlinked_back_into_the_tree_is_refused_by_name(tmp_path):
    tree = make_folders(tmp_path / 'tree', {'dog': 3, 'rain': 3})
    outside = make_folders(tmp_path / 'elsewhere', {'siren': 3})
    (tree / 'siren').symlink_to(outside / 'siren')                   # a link out of the tree: followed, as before
    assert get_dataset(str(tree), k_folds=3).classes == ('dog', 'rain', 'siren')
    (tree / 'loop').symlink_to(tree)
    with pytest.raises(DatasetError, match=f"{tree / 'loop'} is a symlink to {tree.resolve()}, inside the tree"):
        get_dataset(str(tree), k_folds=3).meta()
    (tree / 'loop').unlink(); (tree / 'dogs').symlink_to(tree / 'dog')
    with pytest.raises(DatasetError, match=f"{tree / 'dogs'} is a symlink"): get_dataset(str(tree), k_folds=3).meta()


def test_partial_data_is_refused_for_kinds_it_does_not_apply_to(made, tmp_path, capsys):
    from esc50_norm.study.cli import main as cli
    for spec in (made['folders'], made['csv'], made['us8k']):
        with pytest.raises(DatasetError, match='partial data .* applies to esc50 and esc10 only'):
            get_dataset(str(spec), full=False)
    assert get_dataset(str(made['esc50']), full=False).full is False
    assert cli(['cache', '--dataset', str(made['folders']), '--partial-data', '--cache-dir', str(tmp_path)]) == 2
    assert 'applies to esc50 and esc10 only; a folders dataset is used as it is' in capsys.readouterr().err
