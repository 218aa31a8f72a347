"""Follow one training run across its checkpoints.

:func:`compare_checkpoints` takes runs made from checkpoints along one
training run, on the same samples (reordered to the first run when only the
order differs), and draws every map from ONE start layout: openTSNE on each
checkpoint's features, initialised from the first or the last run's own map
(:func:`~tsneviz.compare.align.tsne_from_init`), then rotated and scaled
onto that layout (:func:`~tsneviz.compare.align.procrustes_align`), so that
what moves between frames is what the features changed. It writes:

- ``checkpoints.gif``: the maps as an animation, one frame per checkpoint;
- ``checkpoints.html``: the maps on one page with a slider across
  checkpoints (:mod:`~tsneviz.compare.slider`);
- ``checkpoints.csv``: per sample, its place at every checkpoint, how far
  it moved (checkpoint to checkpoint, in total, first to last), how many
  of its feature-space neighbours the first and last checkpoint share, and
  its dataset cartography (:mod:`~tsneviz.compare.cartography`);
- ``cartography.png``: the data map, where the runs have a usable head;
- ``coords_common.npy``: the (T, N, 2) maps;
- ``checkpoints.md`` and, last, ``checkpoints.json``: per checkpoint its
  metrics, mean true-class confidence and how far its map is from the
  start; the samples whose neighbourhood changed most; notes.
"""
import os
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np

from tsneviz.compare.align import (
    disparity,
    match_samples,
    procrustes_align,
    tsne_from_init,
)
from tsneviz.compare.animation import write_animation
from tsneviz.compare.cartography import (
    CONFIDENCE_THRESHOLD,
    REGIONS,
    VARIABILITY_THRESHOLD,
    cartography,
    plot_cartography,
    true_class_confidence,
)
from tsneviz.compare.changes import movement, neighbourhood_overlap
from tsneviz.compare.pair import describe_run, run_metrics
from tsneviz.compare.slider import write_slider_page
from tsneviz.errors import UserError
from tsneviz.rundir import (
    Run,
    write_array,
    write_json,
    write_table,
    write_text,
)

#: Which run's own map every checkpoint's map starts from.
START_LAYOUTS = ('first', 'last')
CHECKPOINTS_JSON = 'checkpoints.json'
CHECKPOINTS_MD = 'checkpoints.md'
CHECKPOINTS_CSV = 'checkpoints.csv'
CHECKPOINTS_GIF = 'checkpoints.gif'
CHECKPOINTS_HTML = 'checkpoints.html'
CARTOGRAPHY_PNG = 'cartography.png'
COORDS_NPY = 'coords_common.npy'
#: How many of the samples whose neighbourhood changed most are listed.
TOP_CHANGED = 20


def _load(run_dirs: Sequence[str], key: Optional[str]):
    """The runs, their keys and each one's rows in the first run's order."""
    runs = [Run(path) for path in run_dirs]
    keys = [run.key(key) for run in runs]
    orders = [np.arange(len(runs[0]))] + \
        [match_samples(runs[0], run) for run in runs[1:]]
    labels = runs[0].labels
    for path, run, order in zip(run_dirs[1:], runs[1:], orders[1:]):
        if not np.array_equal(run.labels[order], labels):
            raise UserError(f'{run_dirs[0]} and {path} hold the same images '
                            'with different labels; compare runs of the '
                            'same dataset')
    return runs, keys, orders


def _check_one_layout(run_dirs: Sequence[str], runs, keys) -> None:
    """Refuse runs laid out by different methods or in different dimensions.

    Runs of one training run differ by their checkpoint only; a t-SNE run
    beside a UMAP one, or a 2-D map beside a 3-D one, are other
    experiments, and following them as checkpoints reports movement that
    is the layouts' difference.
    """
    layouts = [(run.method, run.coords(k).shape[1])
               for run, k in zip(runs, keys)]
    if len(set(layouts)) > 1:
        listed = ', '.join(f'{osp.basename(osp.normpath(path))} {method} '
                           f'{dims}-D' for path, (method, dims)
                           in zip(run_dirs, layouts))
        raise UserError(f'the runs are laid out differently ({listed}); '
                        'following checkpoints needs one layout method and '
                        'dimension: make every run with the same --method '
                        'and --n-components')


def _same_checkpoints(infos: Sequence[dict]) -> List[str]:
    """A note where runs were made from the same checkpoint file.

    Their features are the same, so their maps differ only by chance:
    such a "training run" shows no training.
    """
    by_sha = {}
    for t, info in enumerate(infos):
        if info['checkpoint_sha256']:
            by_sha.setdefault(info['checkpoint_sha256'], []).append(t + 1)
    groups = '; '.join(
        f'{", ".join(map(str, ids))} (sha256 {sha[:12]})'
        for sha, ids in by_sha.items() if len(ids) > 1)
    if not groups:
        return []
    return [f'Warning: checkpoints {groups} are the same file: their maps '
            'differ by the layout\'s chance alone; pass one run per '
            'distinct checkpoint.']


def _common_maps(features: List[np.ndarray], start_map: np.ndarray,
                 params: dict) -> tuple:
    """Every checkpoint's map from ``start_map``, in its frame."""
    maps, fits = [], []
    for feats in features:
        embedding, kl = tsne_from_init(feats, start_map, params)
        aligned, info = procrustes_align(start_map, embedding)
        maps.append(aligned)
        fits.append(dict(kl_divergence=kl, scale=info['scale'],
                         reflection=info['reflection'],
                         disparity_to_start=disparity(start_map, aligned)))
    return np.stack(maps), fits


def _confidences(runs, orders, infos, notes) -> Optional[np.ndarray]:
    """(T, N) p(true class), NaN rows for runs without a usable head."""
    rows = []
    for run, order, info in zip(runs, orders, infos):
        confidence, why_not = true_class_confidence(run, order)
        if confidence is None:
            notes.append(f'{info["label"]} ({info["name"]}): {why_not}, so '
                         'it has no true-class confidence.')
            confidence = np.full(len(order), np.nan)
        rows.append(confidence)
    rows = np.stack(rows)
    return None if np.isnan(rows).all() else rows


def _table(runs, coords, moved, overlap, confidences,
           carto) -> dict:
    """The columns of ``checkpoints.csv``."""
    first = runs[0]
    text = first.text_table()
    table = dict(index=[int(i) for i in first.table['index']],
                 img_path=list(first.image_paths),
                 gt_label=first.labels.tolist(),
                 gt_class=list(text['gt_class']))
    n_frames = len(coords)
    for t in range(n_frames):
        table[f'x_{t + 1}'] = np.round(coords[t, :, 0], 5)
        table[f'y_{t + 1}'] = np.round(coords[t, :, 1], 5)
    for t in range(n_frames - 1):
        table[f'moved_{t + 1}_{t + 2}'] = np.round(moved['steps'][t], 5)
    table['moved_total'] = np.round(moved['total'], 5)
    table['moved_net'] = np.round(moved['net'], 5)
    table['knn_overlap'] = np.round(overlap, 4)
    if confidences is not None:
        for t in range(n_frames):
            table[f'confidence_{t + 1}'] = np.round(confidences[t], 6)
    if carto is not None:
        table['confidence'] = np.round(carto['confidence'], 6)
        table['variability'] = np.round(carto['variability'], 6)
        table['region'] = list(carto['region'])
    return table


def _fmt(value, digits=4) -> str:
    return '–' if value is None or not np.isfinite(value) \
        else f'{value:.{digits}f}'


def render_markdown(result: dict) -> str:
    """``checkpoints.md``: the checkpoints, the changes, the notes."""
    lines = ['# tsneviz: following training across checkpoints', '',
             f'- samples: {result["n_samples"]}'
             + (' (runs reordered to the first)' if result['reordered']
                else ''),
             f'- every map: t-SNE of the checkpoint\'s features started '
             f'from the {result["start"]} run\'s map '
             f'(`{result["start_run"]}`), then rotated and scaled onto it',
             '',
             '| # | checkpoint | run | accuracy | mean p(true) | '
             'k-NN acc. features | trustworthiness | moved from previous | '
             'disparity to start |',
             '|---|---|---|---|---|---|---|---|---|']
    for i, row in enumerate(result['checkpoints']):
        m = row['metrics']
        lines.append(
            f'| {i + 1} | {row["label"]} | `{row["name"]}` | '
            f'{_fmt(m.get("accuracy"))} | {_fmt(row["mean_confidence"])} | '
            f'{_fmt(m.get("knn_accuracy_features"))} | '
            f'{_fmt(m.get("trustworthiness"))} | '
            f'{_fmt(row["mean_moved_from_previous"], 3)} | '
            f'{_fmt(row["disparity_to_start"])} |')
    carto = result['cartography']
    if carto is not None:
        counts = ', '.join(f'{n} {r}' for r, n in carto['counts'].items())
        lines += ['', f'Cartography over {carto["n_checkpoints"]} '
                  f'checkpoints: {counts} (ambiguous: variability >= '
                  f'{carto["variability_threshold"]}; else easy-to-learn '
                  f'from mean confidence {carto["confidence_threshold"]}).',
                  '', f'![cartography]({CARTOGRAPHY_PNG})']
    lines += ['', f'Samples whose {result["knn_k"]} nearest neighbours in '
              'feature space changed most, first to last checkpoint:', '',
              '| index | class | k-NN overlap | moved in total | image |',
              '|---|---|---|---|---|']
    for row in result['most_changed']:
        lines.append(f'| {row["index"]} | {row["gt_class"]} | '
                     f'{row["knn_overlap"]:.2f} | {row["moved_total"]:.2f} '
                     f'| `{row["img_path"]}` |')
    lines += [''] + list(result['notes']) + \
        ['', f'![maps across checkpoints]({CHECKPOINTS_GIF})', '']
    return '\n'.join(lines)


def compare_checkpoints(run_dirs: Sequence[str],
                        out_dir: Optional[str] = None,
                        key: Optional[str] = None, start: str = 'last',
                        k: int = 10,
                        confidence_threshold: float = CONFIDENCE_THRESHOLD,
                        variability_threshold: float = VARIABILITY_THRESHOLD
                        ) -> dict:
    """Follow training across runs made from its checkpoints.

    Args:
        run_dirs (Sequence[str]): Two or more run directories, one per
            checkpoint, in training order, on the same samples.
        out_dir (str, optional): Where to write. Defaults to
            ``<work dir of the first>/checkpoints_<first>_to_<last>/``.
        key (str, optional): Feature key, the same in every run. Defaults
            to each run's first.
        start (str): Whose map every map starts from: ``'last'`` (the
            trained model's layout: earlier checkpoints show where samples
            were before they settled) or ``'first'``. Defaults to
            ``'last'``.
        k (int): Neighbours of the neighbourhood overlap. Defaults to 10.
        confidence_threshold (float): Cartography: easy-to-learn from this
            mean confidence. Defaults to 0.5.
        variability_threshold (float): Cartography: ambiguous from this
            variability. Defaults to 0.2.

    Returns:
        dict: What ``checkpoints.json`` holds (``runs``, ``start``,
        ``start_run``, ``tsne_params``, ``n_samples``, ``reordered``,
        ``checkpoints`` (per checkpoint: run, metrics, mean confidence,
        movement, disparity to start), ``cartography``, ``knn_k``,
        ``most_changed``, ``figures`` (points drawn in each), ``notes``)
        plus ``out_dir`` and ``files`` (paths by name).

    Raises:
        UserError: Fewer than two runs, a directory that is not a complete
            run, runs on other samples, a missing key, runs of different
            layout methods or dimensions, a map that is not 2-D, or an
            unknown ``start``.

    Examples:
        >>> result = compare_checkpoints(['work_dirs/d/tsne_epoch1',
        ...                               'work_dirs/d/tsne_epoch2',
        ...                               'work_dirs/d/tsne_epoch3'])
        >>> [round(c['mean_confidence'], 2) for c in result['checkpoints']]
        [0.18, 0.67, 0.77]
    """
    run_dirs = [str(p) for p in run_dirs]
    if len(run_dirs) < 2:
        raise UserError(f'following checkpoints needs two runs or more, got '
                        f'{len(run_dirs)}; pass one run per checkpoint')
    if k < 1:
        raise UserError(f'--k must be 1 or more, got {k}')
    if start not in START_LAYOUTS:
        raise UserError(f'unknown --start {start!r}; choose one of '
                        f'{", ".join(START_LAYOUTS)}')
    runs, keys, orders = _load(run_dirs, key)
    _check_one_layout(run_dirs, runs, keys)
    infos = [describe_run(run, kk) for run, kk in zip(runs, keys)]
    notes: List[str] = _same_checkpoints(infos)
    at = 0 if start == 'first' else len(runs) - 1
    start_map = runs[at].coords(keys[at])[orders[at]]
    if start_map.shape[1] != 2:
        raise UserError(f'{run_dirs[at]} has a {start_map.shape[1]}-D map; '
                        'the maps across checkpoints are 2-D: make the runs '
                        'with --n-components 2')
    labels = runs[0].labels
    features = [run.features(kk)[order]
                for run, kk, order in zip(runs, keys, orders)]
    params = dict((runs[at].manifest.get('tsne') or {}).get('params') or {})
    seed = int(runs[at].manifest.get('seed', 0))
    metric = params.get('metric', 'euclidean')

    coords, fits = _common_maps(features, start_map, params)
    moved = movement(coords)
    overlap = neighbourhood_overlap(features[0], features[-1], k, seed)
    confidences = _confidences(runs, orders, infos, notes)
    usable = [] if confidences is None else \
        [t for t in range(len(runs)) if np.isfinite(confidences[t]).all()]
    carto = None
    if len(usable) >= 2:
        carto = cartography(confidences[usable], confidence_threshold,
                            variability_threshold)
        if len(usable) < len(runs):
            notes.append(f'Cartography uses the {len(usable)} checkpoints '
                         'with a usable head.')
    else:
        notes.append('No cartography: it needs the true-class confidence '
                     'of two checkpoints or more.')

    rows = []
    for t, (run, order, info, fit) in enumerate(
            zip(runs, orders, infos, fits)):
        mean_conf = None if confidences is None or \
            not np.isfinite(confidences[t]).all() \
            else float(confidences[t].mean())
        rows.append(dict(
            info, metrics=run_metrics(features[t], coords[t], labels, run,
                                      order, metric, seed),
            mean_confidence=mean_conf,
            mean_moved_from_previous=None if t == 0
            else float(moved['steps'][t - 1].mean()),
            **fit))
    ranked = np.argsort(overlap, kind='stable')[:TOP_CHANGED]
    first = runs[0]
    most_changed = [dict(index=int(first.table['index'][i]),
                         gt_class=first.label_space.dataset_name(labels[i]),
                         img_path=first.image_paths[i],
                         knn_overlap=float(overlap[i]),
                         moved_total=float(moved['total'][i]))
                    for i in ranked]

    if out_dir is None:
        out_dir = osp.join(osp.dirname(osp.abspath(run_dirs[0])),
                           f'checkpoints_{infos[0]["name"]}_to_'
                           f'{infos[-1]["name"]}')
    os.makedirs(out_dir, exist_ok=True)
    files = {name: osp.join(out_dir, base) for name, base in (
        ('json', CHECKPOINTS_JSON), ('md', CHECKPOINTS_MD),
        ('csv', CHECKPOINTS_CSV), ('gif', CHECKPOINTS_GIF),
        ('html', CHECKPOINTS_HTML), ('coords', COORDS_NPY))}
    # checkpoints.json comes last: until then an older comparison here
    # must not look complete, nor its data map current
    for stale in (files['json'], osp.join(out_dir, CARTOGRAPHY_PNG)):
        if osp.isfile(stale):
            os.remove(stale)
    if carto is not None:
        files['cartography'] = osp.join(out_dir, CARTOGRAPHY_PNG)

    n = len(labels)
    titles = [f'{t + 1}/{len(runs)}: {info["label"]}'
              + ('' if row['mean_confidence'] is None
                 else f' · mean p(true) {row["mean_confidence"]:.2f}')
              for t, (info, row) in enumerate(zip(infos, rows))]
    figures = dict(coords=dict(frames=len(coords), n_points=n))
    write_array(files['coords'], coords.astype(np.float32))
    figures['animation'] = dict(
        frames=write_animation(coords, labels, titles, files['gif']),
        n_points=n)
    figures['page'] = dict(n_points=write_slider_page(
        coords, labels, [first.label_space.dataset_name(y) for y in labels],
        first.table['index'], first.image_paths, titles, confidences,
        moved['total'], files['html'],
        f'tsneviz: {infos[0]["name"]} to {infos[-1]["name"]}'),
        frames=len(coords))
    if carto is not None:
        figures['cartography'] = dict(n_points=plot_cartography(
            carto, f'Data map of {n} samples over {len(usable)} '
            'checkpoints', files['cartography']))
    write_table(files['csv'], _table(runs, coords, moved, overlap,
                                     confidences, carto))
    figures['csv'] = dict(rows=n)

    result = dict(
        runs=[info['path'] for info in infos], start=start,
        start_run=infos[at]['path'], tsne_params=params,
        n_samples=int(n),
        reordered=any(bool(np.any(o != np.arange(n))) for o in orders),
        checkpoints=rows, knn_k=int(min(k, n - 1)),
        most_changed=most_changed,
        cartography=None if carto is None else dict(
            counts=carto['counts'], n_checkpoints=len(usable),
            checkpoints=[t + 1 for t in usable], regions=list(REGIONS),
            confidence_threshold=carto['confidence_threshold'],
            variability_threshold=carto['variability_threshold']),
        figures=figures, notes=notes)
    write_text(files['md'], render_markdown(result))
    result['files'] = {name: osp.basename(p) for name, p in files.items()}
    write_json(files['json'], result)
    return dict(result, out_dir=out_dir, files=files)
