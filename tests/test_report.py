"""tsneviz.report and tools/report.py on real runs of the demo model."""
import base64
import csv
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import silhouette_samples

from tests.conftest import DEMO_CHECKPOINT, DEMO_CONFIG, REPO
from tsneviz.errors import UserError
from tsneviz.report import (
    class_errors,
    confusion_data,
    silhouette_by_class,
    write_report,
)
from tsneviz.report import writer as report_mod
from tsneviz.rundir import Run

FAST = dict(perplexity=10.0, n_iter=400)
CLUSTERS_HEADER = ('rank,cluster,size,purity,dominant_class,dominant_share,'
                   'classes,error_rate,mean_loss,top_confusions')


def make_run(work_dir, options, **kwargs):
    from tsneviz.apis import run_vis_tsne
    return run_vis_tsne(DEMO_CONFIG, kwargs.pop('checkpoint', DEMO_CHECKPOINT),
                        analysis=(), work_dir=work_dir,
                        cfg_options=dict(options),
                        max_num_samples=15, tsne=dict(FAST),
                        show_progress=False, **kwargs)


@pytest.fixture(scope='module')
def runs(tmp_path_factory, digits_options):
    """A trained run with a head and the same model without one."""
    root = tmp_path_factory.mktemp('report')
    trained = make_run(str(root / 'trained'), digits_options)
    headless = make_run(str(root / 'headless'),
                        {**digits_options, 'model.head': None})
    return dict(trained=trained, headless=headless, root=root)


def copy_run(run_dir, dest):
    shutil.copytree(run_dir, dest)
    return str(dest)


@pytest.fixture
def trained(runs, tmp_path):
    """A private copy of the trained run, free to modify."""
    return copy_run(runs['trained'], tmp_path / 'trained')


@pytest.fixture
def headless(runs, tmp_path):
    return copy_run(runs['headless'], tmp_path / 'headless')


def read_rows(run_dir):
    with open(osp.join(run_dir, 'samples.csv'), newline='') as f:
        return list(csv.DictReader(f))


def section(md, title):
    """The text of one ``## title`` section of the markdown."""
    match = re.search(rf'^## {re.escape(title)}\n(.*?)(?=^## |\Z)', md,
                      re.S | re.M)
    assert match, f'no section {title!r}'
    return match.group(1)


def test_report_holds_the_metrics_of_run_json(trained):
    md_path, html_path = write_report(trained)
    assert (md_path, html_path) == (osp.join(trained, 'report.md'),
                                    osp.join(trained, 'report.html'))
    md = open(md_path).read()
    page = open(html_path).read()
    result = json.load(open(osp.join(trained, 'run.json')))['results'][
        'feat_3']
    metrics = section(md, 'Separation metrics')
    for name in ('knn_accuracy_features', 'knn_accuracy_embedding',
                 'trustworthiness', 'kl_divergence'):
        text = f'{result[name]:.4f}'
        assert text in metrics, name
        assert text in page, name
    assert '10-NN accuracy, feature space' in metrics
    assert 'Values from run.json' in metrics
    rows = read_rows(trained)
    accuracy = np.mean([r['gt_label'] == r['pred_label'] for r in rows])
    assert f'| classification accuracy | {accuracy:.4f} |' in metrics


def test_metrics_are_computed_when_run_json_lacks_them(trained):
    manifest_path = osp.join(trained, 'run.json')
    manifest = json.load(open(manifest_path))
    stored = manifest['results']['feat_3']
    manifest['results'] = {}
    json.dump(manifest, open(manifest_path, 'w'))
    md = open(write_report(trained)[0]).read()
    metrics = section(md, 'Separation metrics')
    assert 'computed for this report' in metrics
    # the same deterministic computation as the run's own
    for name in ('knn_accuracy_features', 'knn_accuracy_embedding',
                 'trustworthiness'):
        assert f'{stored[name]:.4f}' in metrics, name
    report = json.load(open(manifest_path))['report']
    assert report['metrics_source'] == 'computed'
    assert report['metrics']['trustworthiness'] == pytest.approx(
        stored['trustworthiness'])


def test_confusion_matrix_counts_match_the_table(trained, monkeypatch):
    fed = {}
    original = report_mod.plot_confusion_matrix

    def spy(matrix, names, out_path, title=''):
        fed['matrix'], fed['names'] = np.array(matrix), list(names)
        return original(matrix, names, out_path, title)

    monkeypatch.setattr(report_mod, 'plot_confusion_matrix', spy)
    write_report(trained)

    rows = read_rows(trained)
    ids = sorted({int(r['gt_label']) for r in rows}
                 | {int(r['pred_label']) for r in rows})
    expected = np.zeros((len(ids), len(ids)), dtype=int)
    for r in rows:
        expected[ids.index(int(r['gt_label'])),
                 ids.index(int(r['pred_label']))] += 1
    np.testing.assert_array_equal(fed['matrix'], expected)
    assert fed['names'] == [str(i) for i in ids]  # digit class names
    assert fed['matrix'].sum() == len(rows) == 150
    matrix, cm_ids, _ = confusion_data(Run(trained))
    np.testing.assert_array_equal(matrix, expected)
    assert cm_ids == ids
    png = osp.join(trained, 'confusion_matrix.png')
    assert open(png, 'rb').read(8) == b'\x89PNG\r\n\x1a\n'
    assert '![confusion matrix](confusion_matrix.png)' in open(
        osp.join(trained, 'report.md')).read()


def test_silhouette_for_every_class_matches_sklearn(trained):
    md = open(write_report(trained)[0]).read()
    table = section(md, 'Silhouette by class')
    run = Run(trained)
    labels = run.labels
    feats = silhouette_samples(run.features(), labels)
    emb = silhouette_samples(run.coords(), labels)
    classes = np.unique(labels)
    assert len(classes) == 10
    for c in classes:
        row = (f'| {run.classes[c]} | {np.sum(labels == c)} | '
               f'{feats[labels == c].mean():.3f} | '
               f'{emb[labels == c].mean():.3f} |')
        assert row in table, row
    assert f'| all | 150 | {feats.mean():.3f} | {emb.mean():.3f} |' in table


def test_silhouette_subsample_keeps_every_class(runs):
    run = Run(runs['trained'])
    sil = silhouette_by_class(run.features(), run.coords(), run.labels,
                              max_samples=30)
    assert sil['classes'] == list(range(10))
    assert sil['n_samples'] < 150 and min(sil['counts']) >= 2
    assert all(-1 <= v <= 1 for v in sil['features'] + sil['embedding'])


def test_worst_classes_are_sorted_by_accuracy_then_loss(trained):
    run = Run(trained)
    errors = class_errors(run)
    assert len(errors) == 10
    keys = [(e['accuracy'], -e['mean_loss']) for e in errors]
    assert keys == sorted(keys)
    rows = read_rows(trained)
    for e in errors:
        mine = [r for r in rows if int(r['gt_label']) == e['label']]
        assert e['n'] == len(mine)
        assert e['accuracy'] == pytest.approx(
            np.mean([r['pred_label'] == r['gt_label'] for r in mine]))
        assert e['mean_loss'] == pytest.approx(
            np.mean([float(r['loss']) for r in mine]))
    md = open(write_report(trained)[0]).read()
    worst = section(md, 'Worst classes')
    assert f'| {errors[0]["name"]} | {errors[0]["n"]} | ' \
           f'{errors[0]["accuracy"]:.3f} |' in worst


def test_html_is_self_contained(trained):
    # a second plot view, as other steps write them (feat_<key>_<view>.png)
    shutil.copy(osp.join(trained, 'feat_3.png'),
                osp.join(trained, 'feat_3_clusters.png'))
    _, html_path = write_report(trained)
    page = open(html_path).read()
    assert not re.search(r'https?://|//[a-z0-9.-]+\.[a-z]{2,}/', page, re.I)
    assert '<script' not in page.lower() and '<link' not in page.lower()
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == 3  # confusion matrix, feat_3, feat_3_clusters
    assert all(s.startswith('data:image/png;base64,') for s in sources)
    inlined = {base64.b64decode(s.split(',', 1)[1]) for s in sources}
    for name in ('confusion_matrix.png', 'feat_3.png', 'feat_3_clusters.png'):
        assert open(osp.join(trained, name), 'rb').read() in inlined, name
    md = open(osp.join(trained, 'report.md')).read()
    assert '![feat_3.png](feat_3.png)' in md
    assert '![feat_3_clusters.png](feat_3_clusters.png)' in md


def test_clusters_csv_is_shown_by_rank(trained):
    # written out of order: the report must sort by rank
    with open(osp.join(trained, 'clusters.csv'), 'w') as f:
        f.write(CLUSTERS_HEADER + '\n'
                '2,0,15,1.0,0,1.0,0:15,0.0,0.0123,\n'
                '1,4,12,0.75,8,0.75,8:9;3:3,0.25,0.8123,3->8:3\n')
    md = open(write_report(trained)[0]).read()
    table = section(md, 'High-loss clusters')
    first = table.index('| 1 | 4 | 12 | 0.750 | 8 | 0.750 | 8:9;3:3 | '
                        '0.250 | 0.812 | 3->8:3 |')
    second = table.index('| 2 | 0 | 15 | 1.000 |')
    assert first < second
    assert 'Top 2 of 2 clusters' in table


def test_without_clusters_the_report_says_how_to_get_them(trained):
    md = open(write_report(trained)[0]).read()
    assert 'clusters.csv not found' in section(md, 'High-loss clusters')


def test_run_without_head_says_so(headless):
    assert not Run(headless).has_predictions
    md_path, html_path = write_report(headless)
    md = open(md_path).read()
    for title in ('Confusion matrix', 'Worst classes'):
        text = section(md, title)
        assert 'no classification head' in text
        assert not re.search(r'\d\.\d{3}', text)  # no numbers made up
    assert '| classification accuracy | no classification head |' in md
    assert not osp.exists(osp.join(headless, 'confusion_matrix.png'))
    page = open(html_path).read()
    assert page.count('no classification head') >= 3
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 1
    # the separation metrics and silhouette do not need a head
    assert '| 0 | 15 |' in section(md, 'Silhouette by class')


def test_manifest_lists_the_outputs_last(trained):
    write_report(trained)
    manifest = json.load(open(osp.join(trained, 'run.json')))
    assert {'report.md', 'report.html', 'confusion_matrix.png'} <= \
        set(manifest['outputs'])
    for name in manifest['outputs']:
        assert osp.isfile(osp.join(trained, name)), name
    assert manifest['report']['key'] == 'feat_3'
    assert manifest['report']['metrics_source'] == 'run.json'
    # run.json written after the report files
    assert osp.getmtime(osp.join(trained, 'run.json')) >= \
        osp.getmtime(osp.join(trained, 'report.html'))
    assert not [n for n in os.listdir(trained) if n.startswith('.tmp_')]


def test_unknown_key_and_incomplete_run_are_user_errors(trained, tmp_path):
    with pytest.raises(UserError, match="no feature 'feat_9'"):
        write_report(trained, key='feat_9')
    os.remove(osp.join(trained, 'run.json'))
    with pytest.raises(UserError, match='no run.json'):
        write_report(trained)


def run_tool(*args):
    return subprocess.run([sys.executable, osp.join(REPO, 'tools',
                                                    'report.py'), *args],
                          capture_output=True, text=True, cwd=REPO,
                          timeout=300)


def test_cli_prints_both_paths(trained):
    proc = run_tool(trained, '--key', 'feat_3')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [osp.join(trained, 'report.md'),
                                   osp.join(trained, 'report.html')]


def test_cli_error_is_one_line(tmp_path):
    proc = run_tool(str(tmp_path))
    assert proc.returncode == 2
    assert 'Traceback' not in proc.stderr
    assert proc.stderr.strip().count('\n') == 0
    assert proc.stderr.startswith('error: ') and 'run.json' in proc.stderr


def test_suspected_label_errors_are_ranked(headless):
    from tsneviz.analysis.label_issues import find_label_issues
    md = open(write_report(headless)[0]).read()
    assert '## Suspected label errors' not in md  # not computed yet
    found = find_label_issues(headless, method='knn', k=5)
    assert found['n_issues'] > 0
    md = open(write_report(headless)[0]).read()
    text = section(md, 'Suspected label errors')
    run = Run(headless)
    flagged = np.flatnonzero(run.table['label_issue'] == 1)
    quality = run.table['label_quality']
    rows = [line for line in text.splitlines()
            if re.match(r'^\| \d+ \|', line)]
    assert len(rows) == min(10, len(flagged))
    shown = [float(line.split(' | ')[3]) for line in rows]
    assert shown == sorted(shown)
    assert shown[0] == pytest.approx(quality[flagged].min(), abs=5e-4)
    # paths relative to data_prefix, as an annotation file has them
    first = rows[0].split(' | ')[2]
    assert not osp.isabs(first) and first.endswith('.png')
    assert 'nearest neighbours in feature space' in text
    assert 'held-out data' in text
