"""A run made with a relative data_root works from any folder.

The demo config's ``data_root = 'data/digits'`` is relative, like most
mmpretrain configs. The run is made from a project folder holding
``data/digits``; every tool then runs from ANOTHER folder.
"""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO, make_demo_run
from tsneviz.rundir import Run, read_table, write_json, write_table

PER_CLASS = 10


def tool(name, *args, cwd):
    return subprocess.run([sys.executable, osp.join(REPO, 'tools', name),
                           *map(str, args)], capture_output=True, text=True,
                          cwd=str(cwd), timeout=300)


@pytest.fixture(scope='module')
def project(tmp_path_factory, digits_root):
    """``project/`` with ``data/digits`` and a run made from there, plus an
    unrelated folder ``elsewhere/`` to run the tools from."""
    base = tmp_path_factory.mktemp('paths')
    folder = base / 'project'
    shutil.copytree(digits_root, str(folder / 'data' / 'digits'))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        run_dir = make_demo_run(
            'work', {'test_dataloader.dataset.data_root': 'data/digits',
                     'test_dataloader.num_workers': 0,
                     'test_dataloader.persistent_workers': False},
            max_num_samples=PER_CLASS, analysis=('neighbors', ),
            tsne=dict(perplexity=5.0, n_iter=300))
    elsewhere = base / 'elsewhere'
    elsewhere.mkdir()
    return dict(root=str(folder), data=str(folder / 'data' / 'digits'),
                run_dir=osp.join(str(folder), run_dir),
                elsewhere=str(elsewhere))


def load_annotations(ann_file, **kwargs):
    """What mmpretrain makes of an annotation file."""
    from mmpretrain.datasets import CustomDataset
    dataset = CustomDataset(ann_file=ann_file, **kwargs)
    return [(dataset.get_data_info(i)['img_path'],
             int(dataset.get_data_info(i)['gt_label']))
            for i in range(len(dataset))]


def test_the_run_records_absolute_paths(project):
    run = Run(project['run_dir'])
    assert run.manifest['data_root'] == project['data']
    assert run.manifest['data_prefix'] == osp.join(project['data'], 'val')
    assert run.manifest['cwd'] == project['root']
    paths = run.image_paths
    assert len(paths) == 10 * PER_CLASS
    assert all(osp.isabs(p) and osp.isfile(p) for p in paths)
    assert all(p.startswith(osp.join(project['data'], 'val') + os.sep)
               for p in paths)


def test_server_serves_the_images_from_elsewhere(project, monkeypatch):
    from fastapi.testclient import TestClient

    from tsneviz.server import create_app

    monkeypatch.chdir(project['elsewhere'])
    root = osp.dirname(project['run_dir'])
    app = create_app(root)
    with TestClient(app, base_url='http://127.0.0.1') as client:
        run_id = next(r['id'] for r in client.get('/api/runs').json()['runs']
                      if osp.samefile(osp.join(root, r['path']),
                                      project['run_dir']))
        full = client.get(f'/api/runs/{run_id}/images/0?size=full')
        thumb = client.get(f'/api/runs/{run_id}/images/7?size=thumb')
    assert full.status_code == 200, full.text
    with open(Run(project['run_dir']).image_paths[0], 'rb') as f:
        assert full.content == f.read()
    assert thumb.status_code == 200, thumb.text
    assert thumb.content[:4] == b'\x89PNG'


def test_make_splits_from_elsewhere_loads_in_mmpretrain(project):
    run = Run(project['run_dir'])
    proc = tool('make_splits.py', project['run_dir'], '--val-ratio', '0.3',
                '--by', 'class', cwd=project['elsewhere'])
    assert proc.returncode == 0, proc.stderr
    splits = osp.join(project['run_dir'], 'splits')
    expected = sorted(zip(run.image_paths, run.labels.tolist()))
    # as the demo config names the data, and by the run's data_prefix
    for kwargs in (dict(data_root=run.manifest['data_root'],
                        data_prefix='val'),
                   dict(data_prefix=run.manifest['data_prefix'])):
        train = load_annotations(osp.join(splits, 'train.txt'), **kwargs)
        val = load_annotations(osp.join(splits, 'val.txt'), **kwargs)
        assert len(val) == 30
        both = train + val
        assert all(osp.isfile(p) for p, _ in both)
        assert sorted(both) == expected  # each image once, its own label
    # lines are relative to data_prefix, as the README says
    with open(osp.join(splits, 'val.txt')) as f:
        first = f.readline().rsplit(' ', 1)[0]
    assert not osp.isabs(first) and not first.startswith('data/')


def test_append_twice_from_elsewhere_lists_each_image_once(project):
    run = Run(project['run_dir'])
    meta = osp.join(project['data'], 'meta')
    os.makedirs(meta, exist_ok=True)
    ann = osp.join(meta, 'extra.txt')
    prefix = run.manifest['data_prefix']
    # the file already lists sample 0 under another spelling of its path
    first = osp.relpath(run.image_paths[0], prefix)
    with open(ann, 'w') as f:
        f.write(f'./{first} 0\n')
    indices = [int(run.table['index'][p]) for p in (0, 1, 2, 3)]
    sel = osp.join(project['elsewhere'], 'sel.txt')
    with open(sel, 'w') as f:
        f.write('\n'.join(map(str, indices)) + '\n')
    for expected in ('3 lines added, 1 already there',
                     '0 lines added, 4 already there'):
        proc = tool('export_selection.py', project['run_dir'], '--indices',
                    'sel.txt', '--label', '0', '--out', ann, '--mode',
                    'append', cwd=project['elsewhere'])
        assert proc.returncode == 0, proc.stderr
        assert expected in proc.stdout
    found = load_annotations(ann, data_prefix=prefix)
    assert sorted(osp.normpath(p) for p, _ in found) == \
        sorted(run.image_paths[p] for p in (0, 1, 2, 3))
    assert all(osp.isfile(p) for p, _ in found)


def test_neighbors_from_elsewhere_draws_every_image(project):
    out = osp.join(project['elsewhere'], 'grid.png')
    proc = tool('neighbors.py', project['run_dir'], '--index', '3', '--k',
                '8', '--out', out, cwd=project['elsewhere'])
    assert proc.returncode == 0, proc.stderr
    assert 'warning' not in proc.stderr  # no 'image missing' tiles
    assert osp.isfile(out)


@pytest.fixture
def old_run(project, tmp_path):
    """The run as older versions wrote it: relative paths, no ``cwd``."""
    run_dir = str(tmp_path / 'tsne_old')
    shutil.copytree(project['run_dir'], run_dir)
    table = read_table(osp.join(run_dir, 'samples.csv'))
    table['img_path'] = [osp.relpath(p, project['root'])
                         for p in table['img_path']]
    write_table(osp.join(run_dir, 'samples.csv'), table)
    manifest = json.load(open(osp.join(run_dir, 'run.json')))
    manifest.pop('cwd')
    manifest['data_root'] = 'data/digits'
    manifest['data_prefix'] = 'data/digits/val'
    write_json(osp.join(run_dir, 'run.json'), manifest)
    return run_dir


def test_old_run_without_cwd_fails_clearly_and_with_it_works(project,
                                                             old_run):
    for name, args in (('neighbors.py', ['--index', '3']),
                       ('make_splits.py', ['--val-ratio', '0.3', '--by',
                                           'class'])):
        proc = tool(name, old_run, *args, cwd=project['elsewhere'])
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith('error: the run records the relative '
                                      'path data/digits/')
        assert '"cwd"' in proc.stderr and 'Traceback' not in proc.stderr
    manifest = json.load(open(osp.join(old_run, 'run.json')))
    manifest['cwd'] = project['root']
    write_json(osp.join(old_run, 'run.json'), manifest)
    proc = tool('neighbors.py', old_run, '--index', '3',
                cwd=project['elsewhere'])
    assert proc.returncode == 0 and 'warning' not in proc.stderr, proc.stderr
    proc = tool('make_splits.py', old_run, '--val-ratio', '0.3', '--by',
                'class', cwd=project['elsewhere'])
    assert proc.returncode == 0, proc.stderr
    found = load_annotations(osp.join(old_run, 'splits', 'train.txt'),
                             data_prefix=osp.join(project['data'], 'val'))
    assert len(found) == 70 and all(osp.isfile(p) for p, _ in found)


@pytest.mark.slow
def test_feature_cache_tells_folders_apart(project, tmp_path):
    """The same relative data_root from another folder is other data."""
    other = tmp_path / 'other'
    shutil.copytree(project['data'], str(other / 'data' / 'digits'))
    work = osp.dirname(project['run_dir'])
    options = {'test_dataloader.dataset.data_root': 'data/digits',
               'test_dataloader.num_workers': 0,
               'test_dataloader.persistent_workers': False}
    made = {}
    for name, folder in (('same', project['root']), ('other', str(other))):
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(folder)
            made[name] = Run(make_demo_run(
                work, options, max_num_samples=PER_CLASS,
                tsne=dict(perplexity=6.0, n_iter=300)))
    cached = made['same'].manifest['extraction']['cached_from']
    assert cached == project['run_dir']
    assert made['other'].manifest['extraction']['cached_from'] is None
    assert made['other'].image_paths[0].startswith(str(other) + os.sep)
