"""Placing new samples on a run's map without moving the map.

New images go through the run's model, stage and pooling
(:func:`tsneviz.analysis.neighbors.embed_images`); a run made from plain
features takes new feature rows of the same width. Their coordinates come
from the run's own reducer, rebuilt from its method and parameters in
``run.json``, its features and its map (``from_map``), which places them
(``transform``) while the map stays as it is:

- **t-SNE**: openTSNE's ``TSNEEmbedding.transform`` on the run's map and the
  affinities of its features, with the map's own settings (perplexity,
  metric, PCA, gradient method, FFT grid, seed), whichever backend made it
  (Poličar et al., 2024: new points are optimised against the fixed
  reference points);
- **PCA**: the projection refitted on the run's features, which gives the
  run's coordinates back exactly, then applied to the new rows;
- **UMAP**: a run does not keep its fitted UMAP model, so its map cannot
  take new points; the error says to make a t-SNE or PCA run.

Each placed sample also gets its ``k`` nearest map samples in feature space
(the run's metric), the majority class of its 10 nearest map samples in map
coordinates (``map_vote``: where it landed), and with a classification head
the model's prediction and score. :func:`place_images` and
:func:`place_features` write them as a layer, ``placed/<name>.csv`` plus a
figure ``placed/<name>.png``, and list the layer under ``placed`` in
``run.json``; the explorer and the report show the layers.
"""
import datetime
import os
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from tsneviz.data.scan import (
    IMAGE_EXTENSIONS,
    image_files,
    is_image_name,
    warn_skipped,
)
from tsneviz.errors import UserError
from tsneviz.metrics import check_k
from tsneviz.reduction import reducer_class
from tsneviz.rundir import (
    COORD_AXES,
    Run,
    atomic_write,
    coord_column,
    flat_view_note,
    read_table,
    update_manifest,
    write_table,
)

__all__ = ['PLACED_DIR', 'VOTE_K', 'Placement', 'place_images',
           'place_features', 'project', 'list_images', 'read_labels',
           'placed_layers', 'layer_file']

#: The run directory's folder of placed layers.
PLACED_DIR = 'placed'
#: Map samples whose majority class is ``map_vote``: the 10-NN vote the
#: run's own ``knn_accuracy_embedding`` uses.
VOTE_K = 10
# A layer name is a file name in placed/: letters, digits, '.', '_', '-'.
_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$')
# Paths in one CSV cell: '|' is rare in file names, unlike ' ' or ';'.
PATH_SEPARATOR = '|'


def layer_file(name: str, ext: str = 'csv') -> str:
    """``placed/<name>.<ext>``, relative to the run directory."""
    return f'{PLACED_DIR}/{name}.{ext}'


@dataclass
class Placement:
    """New samples placed on a run's map, rows in input order.

    Attributes:
        key (str): The feature key whose map they are on.
        coords (np.ndarray): (M, 2|3) map coordinates.
        neighbors (np.ndarray): (M, k) positions of the nearest map
            samples in feature space, nearest first.
        distances (np.ndarray): (M, k) their distances (``metric``).
        metric (str): The distance in feature space.
        map_vote (np.ndarray): (M,) majority dataset class of the
            :data:`VOTE_K` nearest map samples in map coordinates.
        how (str): How the coordinates were made.
        images (list[str]): Image paths ('' where unknown).
        labels (np.ndarray, optional): (M,) dataset class ids, -1 unknown.
        pred_label (np.ndarray, optional): (M,) model class ids.
        score (np.ndarray, optional): (M,) softmax score of ``pred_label``.
        name (str, optional): The layer's name, once written.
    """

    key: str
    coords: np.ndarray
    neighbors: np.ndarray
    distances: np.ndarray
    metric: str
    map_vote: np.ndarray
    how: str
    images: List[str] = field(default_factory=list)
    labels: Optional[np.ndarray] = None
    pred_label: Optional[np.ndarray] = None
    score: Optional[np.ndarray] = None
    name: Optional[str] = None

    def __len__(self) -> int:
        return len(self.coords)

    def agreement(self) -> Optional[float]:
        """Share of the labelled samples whose ``map_vote`` is their label.

        None without labels.
        """
        if self.labels is None or not (self.labels >= 0).any():
            return None
        known = self.labels >= 0
        return float((self.map_vote[known] == self.labels[known]).mean())

    def columns(self, run: Run) -> Dict[str, list]:
        """The layer's CSV columns (see :func:`place_features`)."""
        space = run.label_space
        paths = run.image_paths
        cols: Dict[str, list] = {'img_path': list(self.images)}
        if self.labels is not None:
            cols['gt_label'] = [int(v) for v in self.labels]
            cols['gt_class'] = ['' if v < 0 else space.dataset_name(v)
                                for v in self.labels]
        for axis, values in zip(COORD_AXES, self.coords.T):
            cols[coord_column(self.key, axis)] = [float(v) for v in values]
        cols['map_vote'] = [int(v) for v in self.map_vote]
        cols['map_vote_class'] = [space.dataset_name(v)
                                  for v in self.map_vote]
        if self.pred_label is not None:
            cols['pred_label'] = [int(v) for v in self.pred_label]
            cols['pred_class'] = [space.model_name(v)
                                  for v in self.pred_label]
            cols['score'] = [float(v) for v in self.score]
        cols['neighbors'] = [' '.join(str(int(i)) for i in row)
                             for row in self.neighbors]
        cols['neighbor_paths'] = [PATH_SEPARATOR.join(paths[i] for i in row)
                                  for row in self.neighbors]
        cols['neighbor_distances'] = [
            ' '.join(f'{max(float(d), 0.0):.6g}' for d in row)
            for row in self.distances]
        return cols


# ---- inputs ----------------------------------------------------------------

def list_images(sources: Union[str, Sequence[str]]) -> tuple:
    """The image files of folders, image files and list files.

    A folder gives its images (recursively, sorted by path); an image file
    itself; any other file is a list of image paths, one per line
    (relative ones relative to the list's folder).

    Args:
        sources (str | Sequence[str]): What ``--images`` was given.

    Returns:
        tuple: Absolute image paths, and for each the folder it was found
        in (None for files named directly or listed).

    Examples:
        >>> paths, folders = list_images('data/digits/train')
        >>> paths[0], folders[0]
        ('/.../data/digits/train/0/0.png', '/.../data/digits/train')
    """
    if isinstance(sources, str):
        sources = [sources]
    paths: List[str] = []
    folders: List[Optional[str]] = []
    for source in sources:
        source = osp.abspath(str(source))
        if osp.isdir(source):
            found, skipped = image_files(source)
            warn_skipped(skipped, source, 'a folder given to --images gives '
                         f'only {", ".join(IMAGE_EXTENSIONS)} files',
                         'to place them, list them in a text file and pass '
                         'that to --images')
            if not found:
                raise UserError(f'no images found in {source}; pass a '
                                'folder that holds image files')
            paths += found
            folders += [source] * len(found)
        elif is_image_name(source):  # named: any image format
            if not osp.isfile(source):
                raise UserError(f'image not found: {source}')
            paths.append(source)
            folders.append(None)
        elif osp.isfile(source):
            with open(source, encoding='utf-8') as f:
                listed = [line.strip() for line in f if line.strip()]
            base = osp.dirname(source)
            paths += [osp.normpath(osp.join(base, p)) for p in listed]
            folders += [None] * len(listed)
        else:
            raise UserError(f'images not found: {source}; pass image files, '
                            'a folder of images or a text file listing them')
    if not paths:
        raise UserError('no images given; pass image files, a folder of '
                        'images or a text file listing them')
    return paths, folders


def _label_id(value, names: Optional[List[str]], size: int, where: str,
              folder: bool = False) -> int:
    """The dataset class id a label names; one-line errors otherwise.

    A class name comes first. A folder is named after its class (the
    ``CustomDataset`` layout, which named the run's own classes), so on a
    run whose classes have names a folder that names none is refused: a
    folder ``1`` is not the class whose id is 1. A label of a file or a
    list is a name, or an id where no class has it as name; one that is
    the name of one class and the id of another is refused.
    """
    text = str(value).strip()
    named = names.index(text) if names is not None and text in names \
        else None
    number = int(text) if re.fullmatch(r'\d+', text) and int(text) < size \
        else None
    if named is not None and number is not None and named != number and \
            not folder:
        raise UserError(
            f'{where}: label {text!r} is the name of class {named} and the '
            f'id of class {number} ({names[number]!r}); a labels file '
            'cannot tell which: put the images in folders named after '
            'their classes and pass --labels without a file')
    if named is not None:
        return named
    if number is not None and not (folder and names is not None):
        return number
    known = ', '.join(names[:10]) if names else f'0..{size - 1}'
    if folder and names is not None:
        raise UserError(f'{where}: its folder {text!r} is not a class of the '
                        f'run (its classes: {known}); name each folder '
                        'after its class, or pass a labels file of class '
                        'names or ids')
    raise UserError(f'{where}: label {text!r} is not a class of the run '
                    f'(its classes: {known}); use a class name or id')


def read_labels(labels, images: Sequence[str],
                folders: Sequence[Optional[str]], run: Run) -> np.ndarray:
    """Dataset class ids of new samples, from what ``--labels`` says.

    Args:
        labels: ``'folder'``: each image is ``<folder>/<class>/<image>``
            (mmpretrain's ``CustomDataset`` layout) under a folder given to
            ``--images``; a file: lines ``<image path> <label>`` (an
            annotation file; paths relative to a given folder, or to the
            file's own folder, or absolute), or one label per line in the
            order of the samples; a sequence: one label per sample. A label
            is a class name or id of the run's dataset.
        images (Sequence[str]): Absolute image paths ('' for feature rows).
        folders (Sequence[str | None]): The folder each image was found in.
        run (Run): The run whose classes the labels are.

    Returns:
        np.ndarray: (M,) int64 dataset class ids.
    """
    space = run.label_space
    names = space.dataset_classes()
    size = space.dataset_size
    if isinstance(labels, str) and labels == 'folder':
        ids = []
        for path, folder in zip(images, folders):
            parts = osp.relpath(path, folder).split(os.sep) \
                if folder else []
            if len(parts) != 2:
                raise UserError(
                    f'cannot tell the label of {path} from its folder: '
                    'labels from folders need <folder>/<class>/<image> '
                    'under a folder given to --images; pass a labels file')
            ids.append(_label_id(parts[0], names, size, path, folder=True))
        return np.asarray(ids, np.int64)
    if isinstance(labels, str):
        if not osp.isfile(labels):
            raise UserError(f'labels not found: {labels}')
        with open(labels, encoding='utf-8') as f:
            lines = [line.strip() for line in f if line.strip()]
        pairs = [line.rsplit(None, 1) for line in lines]
        if all(len(p) == 2 for p in pairs) and images and all(images):
            return _labels_by_path(pairs, images, folders, labels, names,
                                   size)
        values, where = lines, labels
    else:
        values, where = list(labels), 'the labels'
    if len(values) != len(images):
        raise UserError(f'{where} has {len(values)} labels for '
                        f'{len(images)} samples; give one label per sample')
    return np.asarray([_label_id(v, names, size, where) for v in values],
                      np.int64)


def _labels_by_path(pairs, images, folders, source, names, size):
    bases = [f for f in dict.fromkeys(folders) if f] + \
        [osp.dirname(osp.abspath(source))]
    given = {}
    for path, label in pairs:
        for base in bases:
            given.setdefault(osp.normpath(osp.join(base, path)), label)
    missing = [p for p in images if p not in given]
    if missing:
        raise UserError(f'{source} has no label for {len(missing)} of the '
                        f'{len(images)} images, e.g. {missing[0]}; list '
                        '"<path> <label>" for each (paths relative to the '
                        'images folder)')
    return np.asarray([_label_id(given[p], names, size, source)
                       for p in images], np.int64)


def _load_rows(features, width: int, key: str) -> np.ndarray:
    from tsneviz.data.matrix import load_features

    features = load_features(features, min_rows=1)
    if features.shape[1] != width:
        raise UserError(f'the features have {features.shape[1]} columns but '
                        f"the run's {key} has {width}; pass features made "
                        'the way the run made its own')
    return features


# ---- the layout ---------------------------------------------------------

def project(run: Union[str, Run], X: np.ndarray,
            key: Optional[str] = None) -> tuple:
    """Map coordinates of new feature rows, the run's map left as it is.

    The run's reducer is rebuilt from what the run recorded
    (:meth:`~tsneviz.reduction.BaseReducer.from_map`: its parameters,
    features and map) and places the rows (``transform``), or refuses in
    one line where its maps take no new points (UMAP).

    Args:
        run (str | Run): The run.
        X (np.ndarray): (M, C) features in the run's feature space.
        key (str, optional): Feature key; default the run's first.

    Returns:
        tuple: (M, 2|3) float32 coordinates and a description of how.

    Examples:
        >>> coords, how = project(run_dir, new_features)
        >>> coords.shape
        (25, 2)
    """
    run = run if isinstance(run, Run) else Run(run)
    key = run.key(key)
    try:
        reducer = reducer_class(run.method).from_map(
            run.layout_params, run.features(key), run.coords(key))
        return reducer.transform(X), reducer.placement
    except UserError as refused:
        raise UserError(f'{run.path}: {refused}') from None


def _map_vote(run: Run, key: str, coords: np.ndarray) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    own = run.coords(key)
    k = min(VOTE_K, len(own))
    _, idx = NearestNeighbors(n_neighbors=k).fit(own).kneighbors(coords)
    labels = run.labels
    # ties go to the lowest class id (np.argmax), as everywhere a vote is
    return np.array([np.bincount(labels[row][labels[row] >= 0],
                                 minlength=1).argmax() for row in idx],
                    np.int64)


# ---- the steps ---------------------------------------------------------

def place_features(run_dir: str, features, labels=None,
                   images: Optional[Sequence[str]] = None,
                   name: Optional[str] = None, key: Optional[str] = None,
                   k: int = 10, logits: Optional[np.ndarray] = None,
                   write: bool = True) -> Placement:
    """Place new feature rows on a run's map, without moving the map.

    Args:
        run_dir (str): A complete t-SNE or PCA run directory.
        features (str | np.ndarray): (M, C) features (or a ``.npy`` file)
            in the run's feature space: C is the width of ``key``.
        labels: None, or what :func:`read_labels` takes (a file or a
            sequence of class names or ids of the run's dataset).
        images (Sequence[str], optional): An image path per row, shown by
            the explorer. Defaults to None.
        name (str, optional): The layer's name (``placed/<name>.csv``).
            Defaults to ``'features'``.
        key (str, optional): Feature key; default the run's first.
        k (int): Nearest map samples (feature space) listed per row.
            Defaults to 10.
        logits (np.ndarray, optional): (M, K) logits of the run's model;
            gives ``pred_label``, ``pred_class`` and ``score``.
        write (bool): Write the layer into the run directory and record
            it in ``run.json``; False only returns it. Defaults to True.

    Returns:
        Placement: The placed rows. Written as ``placed/<name>.csv`` with
        the columns ``img_path``, ``gt_label`` and ``gt_class`` (with
        labels), ``<key>_x``, ``<key>_y`` (``_z``), ``map_vote`` and
        ``map_vote_class`` (majority of the 10 nearest map samples in map
        coordinates), ``pred_label``, ``pred_class`` and ``score`` (with a
        head), ``neighbors`` (positions, space-separated, nearest first),
        ``neighbor_paths`` (``|``-separated) and ``neighbor_distances``;
        and the figure ``placed/<name>.png``.

    Examples:
        >>> placed = place_features(run_dir, 'new.npy', name='new')
        >>> placed.coords.shape
        (25, 2)
    """
    from tsneviz.registry import NEIGHBOR_GRAPHS

    run = Run(run_dir)
    key = run.key(key)
    if name is not None or write:
        name = _check_name(name or 'features')
    k = check_k(k)
    feats = run.features(key)
    X = _load_rows(features, feats.shape[1], key)
    images = [''] * len(X) if images is None else list(images)
    if len(images) != len(X):
        raise UserError(f'{len(images)} images for {len(X)} feature rows; '
                        'give one image per row')
    ids = None
    if labels is not None:
        ids = labels if isinstance(labels, np.ndarray) and \
            labels.dtype.kind == 'i' else read_labels(
                labels, images, [None] * len(images), run)
    coords, how = project(run, X, key)
    metric = run.metric
    k = min(int(k), len(feats))
    distances, neighbors = NEIGHBOR_GRAPHS.build(dict(
        type='exact', features=feats, metric=metric)).kneighbors(
            X, n_neighbors=k)
    placed = Placement(key=key, coords=coords, neighbors=neighbors,
                       distances=distances, metric=metric,
                       map_vote=_map_vote(run, key, coords), how=how,
                       images=images, labels=ids)
    if logits is not None:
        from tsneviz.extraction import prediction_columns
        predicted = prediction_columns(np.asarray(logits))
        placed.pred_label = predicted['pred_label']
        placed.score = predicted['score']
    if write:
        placed.name = name
        _write_layer(run, name, placed)
    return placed


def place_images(run_dir: str, images, labels=None,
                 name: Optional[str] = None, key: Optional[str] = None,
                 k: int = 10, device: str = 'cpu', batch_size: int = 64,
                 write: bool = True,
                 trust_checkpoint: bool = False) -> Placement:
    """Place new images on a run's map, without moving the map.

    The images go through the run's model, stage and pooling
    (:func:`~tsneviz.analysis.neighbors.embed_images`), then
    :func:`place_features`.

    Args:
        run_dir (str): A complete t-SNE or PCA run made from a model.
        images (str | Sequence[str]): Folders, image files or text files
            listing images (:func:`list_images`).
        labels: None; ``'folder'`` (``<folder>/<class>/<image>``); a file
            of ``<path> <label>`` lines or of one label per line; or a
            sequence of labels (see :func:`read_labels`).
        name (str, optional): The layer's name; default the basename of
            the first folder given, else ``'images'``.
        key (str, optional): Feature key; default the run's first.
        k (int): Nearest map samples listed per image. Defaults to 10.
        device (str): Torch device. Defaults to ``'cpu'``.
        batch_size (int): Images per forward pass. Defaults to 64.
        write (bool): Write the layer (see :func:`place_features`).
            Defaults to True.
        trust_checkpoint (bool): Unpickle the run's checkpoint fully
            (:func:`~tsneviz.analysis.neighbors.embed_images`). Defaults
            to False.

    Returns:
        Placement: The placed images.

    Examples:
        >>> placed = place_images(run_dir, 'data/digits/train',
        ...                       labels='folder')
        >>> round(placed.agreement(), 2)
        0.98
    """
    from tsneviz.analysis.neighbors import embed_images

    run = Run(run_dir)
    key = run.key(key)
    paths, folders = list_images(images)
    if name is None and write:
        first = next((f for f in folders if f), None)
        name = osp.basename(first) if first else 'images'
    if name is not None:
        name = _check_name(name)
    ids = None if labels is None else read_labels(labels, paths, folders,
                                                  run)
    feats, logits = embed_images(run, paths, key, device, batch_size,
                                 trust_checkpoint=trust_checkpoint)
    return place_features(run.path, feats, labels=ids, images=paths,
                          name=name, key=key, k=k, logits=logits,
                          write=write)


# ---- the layer on disk --------------------------------------------------

def _check_name(name: str) -> str:
    if not _NAME.match(str(name)):
        raise UserError(f'layer name {name!r} must be 1-64 letters, digits, '
                        "'.', '_' or '-', starting with a letter or digit")
    return str(name)


def _write_layer(run: Run, name: str, placed: Placement) -> None:
    os.makedirs(run.file(PLACED_DIR), exist_ok=True)
    table, figure = layer_file(name), layer_file(name, 'png')
    write_table(run.file(table), placed.columns(run))
    _plot_layer(run, placed, name, run.file(figure))
    agreement = placed.agreement()
    entry = dict(
        file=table, figure=figure, key=placed.key, n=len(placed),
        how=placed.how, source='images' if any(placed.images)
        else 'features', k=int(placed.neighbors.shape[1]),
        metric=placed.metric, vote_k=VOTE_K,
        labelled=0 if placed.labels is None
        else int((placed.labels >= 0).sum()),
        vote_agreement=None if agreement is None else round(agreement, 6),
        has_predictions=placed.pred_label is not None,
        created=datetime.datetime.now(datetime.timezone.utc).strftime(
            '%Y-%m-%dT%H:%M:%S%z'))
    # read again: another layer may have been recorded since ``run`` was
    layers = dict(Run(run.path).manifest.get('placed') or {})
    layers[name] = entry
    update_manifest(run.path, {'placed': layers}, [table, figure])


def _plot_layer(run: Run, placed: Placement, name: str, out: str) -> None:
    """The map in light class colours, the placed samples as stars."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from tsneviz.visualization import class_palette

    coords = run.coords(placed.key)
    labels = run.labels
    palette = class_palette(max(run.label_space.dataset_size,
                                int(labels.max()) + 1))
    fig = Figure(figsize=(5.6, 5.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.scatter(coords[:, 0], coords[:, 1], s=14, alpha=0.45, linewidths=0,
               c=[palette[i] for i in labels])
    if placed.labels is not None:
        colors = [palette[i] if i >= 0 else (0, 0, 0, 1)
                  for i in placed.labels]
    else:
        colors = 'black'
    ax.scatter(placed.coords[:, 0], placed.coords[:, 1], s=12, marker='*',
               c=colors, edgecolors='black', linewidths=0.25)
    title = (f'{name}: {len(placed)} placed on the '
             f'{reducer_class(run.method).name} map')
    note = flat_view_note(coords.shape[1])
    if note:
        title += f' ({note})'
    agreement = placed.agreement()
    if agreement is not None:
        title += f'\n{VOTE_K}-NN map class = label: {agreement:.1%}'
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    atomic_write(out, lambda f: fig.savefig(f, format='png', dpi=90))


def placed_layers(run: Union[str, Run]) -> List[dict]:
    """The placed layers of a run, as ``run.json`` lists them.

    Args:
        run (str | Run): The run.

    Returns:
        list[dict]: Per layer its ``run.json`` entry plus ``name`` and
        ``table`` (the CSV's columns, as text), in name order; a layer
        whose CSV is missing is left out.
    """
    run = run if isinstance(run, Run) else Run(run)
    layers = []
    for name, entry in sorted((run.manifest.get('placed') or {}).items()):
        path = run.file(entry.get('file', layer_file(name)))
        if not osp.isfile(path):
            continue
        # run.json names the file: it is read only from inside the run
        layers.append(dict(entry, name=name,
                           table=read_table(path, inside=run.path)))
    return layers
