"""Nearest neighbours in feature space: stored per run, queried later.

:func:`compute_neighbors` stores the ``k`` nearest neighbours of every
sample of a run directory in ``neighbors_<key>.npz``; :func:`query` returns
the neighbours of one sample of the run, or of a new image passed through
the run's model, stage and pooling; :func:`save_neighbor_grid` draws a query
and its neighbours as an image grid (``tools/neighbors.py``).

Neighbours are what makes a mistake legible: a misclassified image whose
neighbours all carry another label is usually mislabelled or ambiguous; one
whose neighbours agree with its label is a model error.

``neighbors_<key>.npz`` holds:

- ``indices``: int32 (N, k), sample POSITIONS (rows of ``samples.csv``,
  not dataset indices), nearest first, the sample itself excluded;
- ``distances``: float32 (N, k), in the same order;
- ``metric``: ``'cosine'`` (1 - cosine similarity) or ``'euclidean'``;
- ``k``, ``builder`` (the ``NEIGHBOR_GRAPHS`` search), ``space``
  (``'features'``, or ``'pca50'``: the t-SNE's 50 PCA components) and
  ``recall`` (recall@k against exact search on a sample; 1 for exact).

A run writes it once, as its shared neighbour graph
(:func:`tsneviz.analysis.graphs.shared_graph`, see ``neighbor_graph`` in
``run.json``); the ``neighbors`` step then only reads it.
"""
import math
import os
import os.path as osp
import sys
import threading
from collections import OrderedDict
from typing import List, Optional, Sequence, Union

import numpy as np

from tsneviz.data.paths import resolve
from tsneviz.errors import UserError
from tsneviz.fonts import cover_glyphs
from tsneviz.metrics import check_k, nearest_neighbors
from tsneviz.rundir import (
    CONFIG,
    Run,
    atomic_write,
    neighbors_file,
    update_manifest,
)

__all__ = ['METRICS', 'compute_neighbors', 'write_graph', 'load_neighbors',
           'query',
           'describe_sample', 'embed_image', 'embed_images',
           'save_neighbor_grid']

METRICS = ('cosine', 'euclidean')
# The models of the runs last embedded into (see _run_model): a server
# builds and loads a run's model once, not per request. Each one can be
# large (a ViT-L is over 1 GB), so only a few are kept.
_MODELS: 'OrderedDict[tuple, tuple]' = OrderedDict()
_MODELS_KEPT = 2
# One embedding at a time in the process. A kept model is shared between
# threads, and extract() taps it with a forward hook that would also catch
# another thread's batch; building it sets mmengine's default scope, which
# is process-wide too. The forward pass uses all cores on its own.
_EMBED_LOCK = threading.Lock()


def _check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise UserError(f'unknown metric {metric!r}; choose one of '
                        f'{", ".join(METRICS)}')
    return metric


def _as_run(run_dir: Union[str, Run]) -> Run:
    return run_dir if isinstance(run_dir, Run) else Run(run_dir)


def _fit(features: np.ndarray, metric: str, graph: str = 'exact'):
    # The search is a NEIGHBOR_GRAPHS entry (tsneviz/analysis/graphs.py),
    # so an approximate one can be swapped in by name.
    from tsneviz.registry import NEIGHBOR_GRAPHS
    return NEIGHBOR_GRAPHS.build(dict(type=graph, features=features,
                                      metric=metric))


def compute_neighbors(run_dir: str, k: int = 20, metric: str = 'cosine',
                      key: Optional[str] = None,
                      show_progress: bool = True) -> str:
    """Store the k nearest neighbours of every sample of a run.

    Writes ``neighbors_<key>.npz`` (see the module docstring) and then adds
    a ``neighbors`` section to ``run.json``: per key the file, ``k``, the
    metric and ``same_class_rate`` (share of neighbours with the sample's
    ground-truth class, a quick separation figure).

    Args:
        run_dir (str): A complete run directory.
        k (int): Neighbours per sample, the sample itself excluded.
            Defaults to 20.
        metric (str): ``'cosine'`` (1 - cosine similarity) or
            ``'euclidean'``. Defaults to ``'cosine'``.
        key (str, optional): Feature key; default the run's first.
        show_progress (bool): Draw a progress bar. Defaults to True.

    Returns:
        str: Path of the ``.npz`` file.

    Examples:
        >>> path = compute_neighbors(run_dir, k=10)
        >>> np.load(path)['indices'].shape
        (300, 10)
    """
    from tsneviz.progress import progress_bar

    run = Run(run_dir)
    key = run.key(key)
    _check_metric(metric)
    features = run.features(key)
    n = len(features)
    k = check_k(k, n, ' of the run')
    with progress_bar(f'Neighbours {key}', n, show_progress) as bar:
        indices, distances = nearest_neighbors(
            features, k, metric, index=_fit(features, metric),
            progress=lambda done: bar(advance=done))
    graph = dict(indices=indices, distances=distances, metric=metric, k=k,
                 builder='exact', space='features', recall=1.0)
    name, entry = write_graph(run_dir, key, graph, run.labels)
    section = dict(run.manifest.get('neighbors') or {})
    section[key] = entry
    update_manifest(run_dir, {'neighbors': section}, [name])
    return osp.join(run_dir, name)


def write_graph(run_dir: str, key: str, graph: dict,
                labels: np.ndarray) -> tuple:
    """Write a neighbour graph as ``neighbors_<key>.npz``.

    Args:
        run_dir (str): The run directory.
        key (str): Feature key.
        graph (dict): ``indices``, ``distances``, ``metric``, ``k``,
            ``builder``, ``space`` and ``recall`` (what
            :func:`tsneviz.analysis.graphs.shared_graph` returns).
        labels (np.ndarray): (N,) ground-truth labels.

    Returns:
        tuple: The file name and its entry of run.json's ``neighbors``
        section (``file``, ``k``, ``metric``, ``builder``, ``space``,
        ``recall``, ``same_class_rate``).
    """
    indices = np.asarray(graph['indices'], np.int32)
    distances = np.asarray(graph['distances'], np.float32)
    name = neighbors_file(key)
    atomic_write(osp.join(run_dir, name), lambda f: np.savez(
        f, indices=indices, distances=distances,
        metric=np.array(graph['metric']), k=np.array(int(graph['k'])),
        builder=np.array(graph['builder']), space=np.array(graph['space']),
        recall=np.array(float(graph['recall']))))
    labels = np.asarray(labels)
    same = float((labels[indices] == labels[:, None]).mean())
    return name, dict(file=name, k=int(graph['k']), metric=graph['metric'],
                      builder=graph['builder'], space=graph['space'],
                      recall=float(graph['recall']),
                      same_class_rate=round(same, 6))


def load_neighbors(run_dir: str, key: Optional[str] = None
                   ) -> Optional[dict]:
    """Stored neighbours of a key, or None when none were computed.

    Returns:
        dict | None: ``indices``, ``distances`` and ``metric``.
    """
    return _as_run(run_dir).neighbors(key)


def _cell(value) -> Optional[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def describe_sample(run_dir: Union[str, Run], position: int,
                    distance: Optional[float] = None) -> dict:
    """One sample of a run as the dicts :func:`query` returns.

    Args:
        run_dir (str | Run): The run.
        position (int): Row of ``samples.csv`` (0..N-1).
        distance (float, optional): Distance to record. Defaults to None.

    Returns:
        dict: ``position``, ``index`` (dataset index), ``img_path``
        (absolute; as recorded for an older run that holds relative paths
        and not the folder it was started from), ``gt_label``,
        ``gt_class`` (the dataset's name), ``pred_label``, ``pred_class``
        (the model's name; None without predictions), ``correct`` (None
        where the label spaces are not matched) and ``distance``.
    """
    run = _as_run(run_dir)
    table = run.table

    def get(column):
        values = table.get(column)
        return None if values is None else _cell(values[position])

    # ground truth is named in the dataset's classes, predictions in the
    # model's; they are compared only where the two spaces are matched
    space = run.label_space
    gt = int(run.labels[position])
    pred = get('pred_label')
    pred = None if pred is None else int(pred)
    correct = None if pred is None else space.correct([gt], [pred])
    return dict(position=int(position),
                index=int(float(table['index'][position])),
                img_path=resolve(str(table['img_path'][position]),
                                 run.manifest, strict=False),
                gt_label=gt, gt_class=space.dataset_name(gt),
                pred_label=pred,
                pred_class=None if pred is None else space.model_name(pred),
                correct=None if correct is None else bool(correct[0]),
                distance=None if distance is None else float(distance))


def _pipeline(cfg):
    """The test pipeline the run's samples went through."""
    loader = cfg.get('test_dataloader', None) or {}
    pipeline = (loader.get('dataset', None) or {}).get('pipeline', None)
    if pipeline is None:
        pipeline = cfg.get('test_pipeline', None)
    if pipeline is None:
        raise UserError('the run\'s config.py has no test_dataloader.dataset'
                        '.pipeline nor test_pipeline; cannot prepare a new '
                        'image the way the run\'s samples were')
    return pipeline


def _run_checkpoint(run: Run) -> Optional[str]:
    """The run's checkpoint, checked against the recorded hash."""
    from tsneviz.checkpoint import file_sha256

    info = run.manifest.get('checkpoint') or {}
    path = resolve(info.get('path'), run.manifest)
    if path is None:
        return None
    if not osp.isfile(path):
        raise UserError(f'the run\'s checkpoint is not found: {path}; put '
                        'it back, or make the run again')
    if info.get('sha256') and file_sha256(path) != info['sha256']:
        raise UserError(f'the checkpoint {path} changed since the run (its '
                        'sha256 differs from run.json), so a new image '
                        'would not be comparable with the run\'s features')
    return path


def _stamp(path: Optional[str]) -> Optional[tuple]:
    """What changes when a file is replaced or edited; None if missing."""
    try:
        st = os.stat(path)
    except (OSError, TypeError):
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _run_model(run: Run, device: str, trust_checkpoint: bool) -> tuple:
    """The run's model and test pipeline, built once and kept.

    The run's ``config.py`` is read as data, never run
    (:func:`~tsneviz.config.load_resolved_config`), and its checkpoint is
    loaded safely unless the CALLER trusts it: a run directory may come
    from someone else, so what its ``run.json`` says (``trusted``) never
    unpickles anything by itself.

    Kept under what they were built from (the run's ``config.py``, its
    checkpoint file as it is now, the device), so that a changed config or
    a replaced checkpoint is built, and checked against its recorded
    sha256, again. Called with :data:`_EMBED_LOCK` held: concurrent first
    requests build the model once.

    Returns:
        tuple: The model, in eval mode on ``device``, and the pipeline.
    """
    from mmcv.transforms import Compose
    from mmengine.registry import DefaultScope

    from tsneviz.config import load_resolved_config
    from tsneviz.model import build_model

    info = run.manifest.get('checkpoint') or {}
    trusted = bool(trust_checkpoint)
    seed = int(run.manifest.get('seed', 0))
    path = resolve(info.get('path'), run.manifest)
    key = (run.path, str(device), _stamp(run.file(CONFIG)), path,
           _stamp(path), trusted, seed)
    if key in _MODELS:
        _MODELS.move_to_end(key)
        return _MODELS[key]
    cfg = load_resolved_config(run.file(CONFIG))
    checkpoint = _run_checkpoint(run)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        pipeline = Compose(_pipeline(cfg))
    model, _ = build_model(cfg, checkpoint, device, trust_checkpoint=trusted,
                           seed=seed)
    _MODELS[key] = (model, pipeline)
    while len(_MODELS) > _MODELS_KEPT:
        _MODELS.popitem(last=False)
    return model, pipeline


def embed_image(run_dir: Union[str, Run], image: str,
                key: Optional[str] = None, device: str = 'cpu',
                trust_checkpoint: bool = False) -> np.ndarray:
    """Features of a new image, made the way the run made its features.

    One image through :func:`embed_images`.

    Args:
        run_dir (str | Run): The run.
        image (str): Image file.
        key (str, optional): Feature key; default the run's first.
        device (str): Torch device. Defaults to ``'cpu'``.
        trust_checkpoint (bool): See :func:`embed_images`. Defaults to
            False.

    Returns:
        np.ndarray: (C,) float32 features.

    Examples:
        >>> embed_image(run_dir, 'data/digits/val/3/1000.png').shape
        (128,)
    """
    return embed_images(run_dir, [image], key, device,
                        trust_checkpoint=trust_checkpoint)[0][0]


def embed_images(run_dir: Union[str, Run], images: Sequence[str],
                 key: Optional[str] = None, device: str = 'cpu',
                 batch_size: int = 64,
                 trust_checkpoint: bool = False) -> tuple:
    """Features (and logits) of new images, made as the run made its own.

    The model is built from the run's resolved ``config.py`` (read as data,
    never run) and the checkpoint of ``run.json`` (loaded safely unless
    ``trust_checkpoint``; checked against its sha256) and kept for the next
    call
    while neither file changes; the images go through the config's test
    pipeline in batches and are read at the recorded stage with the
    recorded token pooling. Threads may call it at once: their batches
    take turns through the shared model.

    Args:
        run_dir (str | Run): The run.
        images (Sequence[str]): Image files.
        key (str, optional): Feature key; default the run's first.
        device (str): Torch device. Defaults to ``'cpu'``.
        batch_size (int): Images per forward pass. Defaults to 64.
        trust_checkpoint (bool): Unpickle the checkpoint fully, which can
            run code from the file: only for a run whose checkpoint you
            trust (one made with ``--trust-checkpoint``). A run's own
            ``trusted`` record is not enough. Defaults to False.

    Returns:
        tuple: (M, C) float32 features and (M, K) logits, or None when
        the model has no classification head.

    Examples:
        >>> feats, logits = embed_images(run_dir, ['a.png', 'b.png'])
        >>> feats.shape, logits.shape
        ((2, 128), (2, 10))
    """
    from mmengine.dataset import default_collate
    from mmengine.registry import DefaultScope

    from tsneviz.extraction import extract

    run = _as_run(run_dir)
    key = run.key(key)
    if not len(images):
        raise UserError('no images given; pass image files or a folder '
                        'that holds some')
    for image in images:
        if not osp.isfile(image):
            raise UserError(f'image not found: {image}')
    if not run.has(CONFIG):
        raise UserError(f'{run.path} has no {CONFIG}: it was made from '
                        'plain features or a PyTorch module, so new images '
                        'cannot be passed through its model; pass their '
                        'features instead')
    extraction = run.manifest['extraction']

    def batches(pipeline):
        for start in range(0, len(images), batch_size):
            packed = []
            for image in images[start:start + batch_size]:
                with DefaultScope.overwrite_default_scope('mmpretrain'):
                    try:
                        one = pipeline(dict(img_path=image))
                    except Exception as err:
                        reason = str(err).strip().splitlines()
                        reason = reason[-1] if reason else \
                            type(err).__name__
                        raise UserError(f'cannot read image {image}: '
                                        f'{reason}') from None
                if one is None:
                    raise UserError(f'cannot read image {image}: the test '
                                    'pipeline dropped it')
                packed.append(one)
            yield default_collate(packed)

    with _EMBED_LOCK:
        model, pipeline = _run_model(run, device, trust_checkpoint)
        result = extract(model, batches(pipeline), extraction['stage'],
                         extraction.get('token_pool', 'mean'))
    if key not in result.features:
        raise UserError(f'the model gave {", ".join(result.features)}, not '
                        f'{key}; the run\'s config or model changed')
    features = result.features[key]
    expected = run.features(key).shape[1]
    if features.shape[1] != expected:
        raise UserError(f'the new images have {features.shape[1]} features '
                        f'where the run has {expected}; the run\'s config '
                        'or model changed')
    return features, result.logits


def query(run_dir: str, index: Optional[int] = None,
          image: Optional[str] = None, k: int = 9, key: Optional[str] = None,
          metric: Optional[str] = None, device: str = 'cpu',
          trust_checkpoint: bool = False) -> List[dict]:
    """Nearest samples of a run to one of its samples or to a new image.

    Give exactly one of ``index`` or ``image``. For a sample of the run its
    stored neighbours (:func:`compute_neighbors`) are used when they have
    the metric and at least ``k`` columns; otherwise they are computed. A
    new image goes through the run's model (see :func:`embed_image`) and is
    compared with all samples of the run; an image that is in the run comes
    back first at distance ~0.

    Args:
        run_dir (str): A complete run directory.
        index (int, optional): Sample POSITION in the run (row of
            ``samples.csv``, 0..N-1); the sample itself is not returned.
        image (str, optional): Path of an image file.
        k (int): Neighbours to return. Defaults to 9.
        key (str, optional): Feature key; default the run's first.
        metric (str, optional): ``'cosine'`` or ``'euclidean'``; default
            the stored neighbours' metric, else ``'cosine'``.
        device (str): Torch device for a new image. Defaults to ``'cpu'``.
        trust_checkpoint (bool): See :func:`embed_images`. Defaults to
            False.

    Returns:
        list[dict]: Nearest first, each as :func:`describe_sample` gives:
        ``position``, ``index`` (dataset index), ``img_path``, ``gt_label``,
        ``gt_class``, ``pred_label``, ``pred_class``, ``distance``.

    Examples:
        >>> [n['gt_class'] for n in query(run_dir, index=0, k=3)]
        ['0', '0', '0']
        >>> query(run_dir, image='new.png', k=1)[0]['distance']
        0.021
    """
    if (index is None) == (image is None):
        raise UserError('give exactly one of index or image')
    run = Run(run_dir)
    key = run.key(key)
    n = len(run)
    stored = load_neighbors(run, key)
    if metric is None:
        metric = stored['metric'] if stored is not None else 'cosine'
    _check_metric(metric)

    if index is not None:
        position = run.check_index(int(index))
        k = check_k(k, n, ' of the run')
        if stored is not None and stored['metric'] == metric and \
                stored['indices'].shape[1] >= k:
            idx = stored['indices'][position, :k]
            dist = stored['distances'][position, :k]
        else:
            features = run.features(key)
            idx, dist = nearest_neighbors(features, k, metric,
                                          rows=[position],
                                          index=_fit(features, metric))
            idx, dist = idx[0], dist[0]
    else:
        # a new image is not one of the samples: all n can be neighbours
        k = check_k(k, n + 1, ' of the run')
        vector = embed_image(run, image, key, device,
                             trust_checkpoint=trust_checkpoint)
        dist, idx = _fit(run.features(key), metric).kneighbors(
            vector[None], n_neighbors=k)
        idx, dist = idx[0], dist[0]
    return [describe_sample(run, int(i), max(float(d), 0.0))
            for i, d in zip(idx, dist)]


def _load_tile(path: str):
    from tsneviz.data.display import open_for_display
    try:
        return np.asarray(open_for_display(path))
    except (OSError, ValueError):
        return None  # moved or unreadable: drawn as an empty tile


def save_neighbor_grid(query_item: dict, neighbors: Sequence[dict],
                       out: str, title: Optional[str] = None) -> str:
    """Draw a query and its neighbours as an image grid (PNG).

    About n x n tiles: the query first, framed in blue and titled
    ``QUERY``, then the neighbours nearest first, each titled with its
    label, the model's prediction and its distance; a neighbour the model
    gets wrong has a red title. Images that cannot be read are drawn as
    "image missing" tiles, with a warning on stderr naming how many and
    one of them.

    Args:
        query_item (dict): ``img_path`` and optionally ``gt_class`` and
            ``pred_class`` of the query (e.g. :func:`describe_sample`).
        neighbors (Sequence[dict]): What :func:`query` returned.
        out (str): PNG path, written atomically.
        title (str, optional): Figure title. Defaults to None.

    Returns:
        str: ``out``.

    Examples:
        >>> save_neighbor_grid(describe_sample(run_dir, 5),
        ...                    query(run_dir, index=5), 'grid.png')
        'grid.png'
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    items = [query_item] + list(neighbors)
    cover_glyphs(item.get(name) for item in items
                 for name in ('gt_class', 'pred_class') if item.get(name))
    cols = math.ceil(math.sqrt(len(items)))
    rows = math.ceil(len(items) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.5 * rows),
                             squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_axis_off()
    missing = []
    for i, (ax, item) in enumerate(zip(axes.flat, items)):
        ax.set_axis_on()
        tile = _load_tile(item['img_path'])
        if tile is not None:
            ax.imshow(tile, interpolation='nearest')
        else:
            missing.append(item['img_path'])
            ax.text(0.5, 0.5, 'image\nmissing', ha='center', va='center',
                    transform=ax.transAxes)
        gt, pred = item.get('gt_class'), item.get('pred_class')
        lines = []
        if gt is not None:
            lines.append(f'label {gt}' + ('' if pred is None
                                          else f' · pred {pred}'))
        elif pred is not None:
            lines.append(f'pred {pred}')
        wrong = item.get('correct') is False
        if item.get('index') is not None:
            lines.insert(0, f'#{item["index"]}')
        if i == 0:
            lines.insert(0, 'QUERY')
            color = 'tab:blue'
        else:
            lines.append(f'd = {item["distance"]:.4g}')
            color = 'tab:red' if wrong else 'black'
        ax.set_title('\n'.join(lines), fontsize=8,
                     color='tab:red' if wrong else 'black')
        for spine in ax.spines.values():
            spine.set_edgecolor(color)
            spine.set_linewidth(3 if i == 0 else (2 if wrong else 0.5))
    if missing:
        print(f'warning: {len(missing)} of the {len(items)} images of the '
              f'grid cannot be read, e.g. {missing[0]}; was the dataset '
              'moved?', file=sys.stderr)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    try:
        atomic_write(out, lambda f: fig.savefig(f, format='png', dpi=100))
    finally:
        plt.close(fig)
    return out
