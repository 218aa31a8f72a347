"""Per-cluster summary: ranking, purity, confusions, no made-up numbers."""
import csv
import os

import numpy as np
import pytest

from tsneviz.analysis.summary import COLUMNS, summarize_clusters, write_summary
from tsneviz.labels import LabelSpace

CLASSES = ['cat', 'dog', 'bird']


def pets():
    """Three clusters; in cluster 0 most cats are predicted 'dog'.

    cluster 0: 10 cats (7 predicted dog, loss 2.0; 1 predicted bird, loss
    1.0) and 2 dogs; cluster 1: 10 dogs, all right (loss 0.05); cluster 2:
    5 birds, 1 predicted cat (loss 0.5), plus 1 cat.
    """
    rows = ([(0, 'cat', 'dog', 2.0)] * 7 + [(0, 'cat', 'bird', 1.0)] +
            [(0, 'cat', 'cat', 0.1)] * 2 + [(0, 'dog', 'dog', 0.1)] * 2 +
            [(1, 'dog', 'dog', 0.05)] * 10 +
            [(2, 'bird', 'cat', 0.5)] + [(2, 'bird', 'bird', 0.1)] * 4 +
            [(2, 'cat', 'cat', 0.1)])
    ids = np.array([r[0] for r in rows])
    table = dict(
        gt_label=np.array([CLASSES.index(r[1]) for r in rows], dtype=float),
        gt_class=np.array([r[1] for r in rows], dtype=object),
        pred_label=np.array([CLASSES.index(r[2]) for r in rows],
                            dtype=float),
        pred_class=np.array([r[2] for r in rows], dtype=object),
        loss=np.array([r[3] for r in rows]))
    return ids, table


def test_cat_cluster_predicted_dog_is_rank_one():
    ids, table = pets()
    rows = summarize_clusters(ids, table)
    assert [r['cluster'] for r in rows] == [0, 2, 1]
    first = rows[0]
    assert first['rank'] == 1
    assert first['top_confusions'] == 'cat->dog:7;cat->bird:1'
    assert first['dominant_class'] == 'cat'
    assert first['size'] == 12
    assert first['purity'] == round(10 / 12, 4)
    # 10 of the 11 cats are in this cluster
    assert first['dominant_share'] == round(10 / 11, 4)
    assert first['classes'] == 'cat:10;dog:2'
    assert first['error_rate'] == round(8 / 12, 4)
    assert first['mean_loss'] == pytest.approx((14 + 1 + 0.4) / 12,
                                               abs=1e-4)
    assert rows[1]['top_confusions'] == 'bird->cat:1'
    # a cluster without errors has no confusions, and error rate 0
    assert rows[2]['top_confusions'] == '' and rows[2]['error_rate'] == 0


def test_ranked_by_mean_loss_not_by_size_or_errors():
    ids, table = pets()
    # cluster 1 (biggest, no errors) gets a huge loss on one sample: it
    # must now come first although its error rate is 0.
    table['loss'][ids == 1] = [50.0] + [0.05] * 9
    rows = summarize_clusters(ids, table)
    losses = [r['mean_loss'] for r in rows]
    assert rows[0]['cluster'] == 1
    assert losses[0] == max(losses)
    assert losses == sorted(losses, reverse=True)
    assert [r['rank'] for r in rows] == [1, 2, 3]


def test_top_lists_are_capped_at_three():
    ids = np.zeros(8, int)
    table = dict(gt_label=np.array([0, 0, 1, 1, 2, 3, 3, 3]),
                 pred_label=np.array([1, 1, 0, 2, 3, 0, 0, 0]),
                 loss=np.ones(8))
    row, = summarize_clusters(ids, table,
                              LabelSpace.build(list('abcd'), None, 4))
    assert row['classes'] == 'd:3;a:2;b:2'
    assert row['top_confusions'] == 'd->a:3;a->b:2;b->a:1'


def test_without_predictions_ranks_by_size_and_leaves_blanks(tmp_path):
    ids, table = pets()
    for name in ('pred_label', 'pred_class', 'loss'):
        del table[name]
    rows = summarize_clusters(ids, table)
    assert [r['cluster'] for r in rows] == [0, 1, 2]  # sizes 12, 10, 6
    for r in rows:
        assert r['error_rate'] is None and r['mean_loss'] is None
        assert r['top_confusions'] == ''
    path = write_summary(str(tmp_path / 'clusters.csv'), rows)
    with open(path, newline='') as f:
        written = list(csv.DictReader(f))
    assert written[0]['error_rate'] == '' and written[0]['mean_loss'] == ''
    assert written[0]['purity'] == repr(round(10 / 12, 4))


def test_noise_is_a_row_of_its_own():
    ids, table = pets()
    ids = ids.copy()
    ids[[0, 12]] = -1  # a confused cat and a dog fall out of any cluster
    rows = summarize_clusters(ids, table)
    noise, = [r for r in rows if r['cluster'] == -1]
    assert noise['size'] == 2
    assert noise['classes'] == 'cat:1;dog:1'
    assert sum(r['size'] for r in rows) == len(ids)


def test_class_names_win_and_numeric_names_read_back_as_integers():
    ids = np.array([0, 0, 1])
    table = dict(gt_label=np.array([3.0, 3.0, 7.0]),
                 gt_class=np.array([3.0, 3.0, 7.0]),  # as Run reads '3'
                 pred_label=np.array([3.0, 7.0, 7.0]),
                 pred_class=np.array([3.0, 7.0, 7.0]),
                 loss=np.array([0.1, 2.0, 0.1]))
    rows = summarize_clusters(ids, table)
    assert rows[0]['top_confusions'] == '3->7:1'
    assert rows[0]['dominant_class'] == '3'
    named = summarize_clusters(ids, table, LabelSpace.build(
        [str(i) for i in range(7)] + ['seven'], None, 8))
    assert named[0]['top_confusions'] == '3->seven:1'


def test_predictions_of_other_classes_are_not_errors():
    ids, table = pets()
    # a model with 1000 unnamed classes: its ids are not the pets'
    other = LabelSpace.build(['cat', 'dog', 'bird'], None, 1000)
    rows = summarize_clusters(ids, table, other)
    assert [r['cluster'] for r in rows] == [0, 1, 2]  # by size
    for r in rows:
        assert r['error_rate'] is None and r['mean_loss'] is None
        assert r['top_confusions'] == ''


def test_csv_has_exactly_the_columns_and_no_temp_files(tmp_path):
    ids, table = pets()
    rows = summarize_clusters(ids, table)
    path = write_summary(str(tmp_path / 'clusters.csv'), rows)
    with open(path, newline='') as f:
        reader = csv.reader(f)
        assert next(reader) == list(COLUMNS)
        body = list(reader)
    assert COLUMNS == ('rank', 'cluster', 'size', 'purity', 'dominant_class',
                       'dominant_share', 'classes', 'error_rate',
                       'mean_loss', 'top_confusions')
    assert body[0][:2] == ['1', '0']
    assert body[0][-1] == 'cat->dog:7;cat->bird:1'
    assert os.listdir(tmp_path) == ['clusters.csv']


def test_length_mismatch_is_an_error():
    ids, table = pets()
    with pytest.raises(ValueError, match='cluster ids for'):
        summarize_clusters(ids[:-1], table)
