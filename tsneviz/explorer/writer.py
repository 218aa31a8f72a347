"""Write a run directory's explorer: :func:`write_explorer`."""
import os
import os.path as osp
from typing import Optional

from tsneviz.errors import UserError
from tsneviz.explorer import data as point_data
from tsneviz.explorer.config import DEFAULT_CONFIG
from tsneviz.explorer.data import DATA_DIR
from tsneviz.explorer.page import SELECTION_SHOWN, figure, render
from tsneviz.explorer.thumbnails import thumbnail_files, write_thumbnails
from tsneviz.metrics import check_k
from tsneviz.rundir import (
    EXPLORER_PAGE,
    Run,
    flat_view_note,
    update_manifest,
    write_text,
)

__all__ = ['PAGE', 'write_explorer']

PAGE = EXPLORER_PAGE


def write_explorer(run_dir: str, key: Optional[str] = None, k: int = 9,
                   thumb_size: int = 64, base_url: Optional[str] = None,
                   image_url: Optional[str] = None,
                   show_progress: bool = False) -> str:
    """Write the interactive explorer ``index.html`` of a run directory.

    Also writes the thumbnails and the page's data files (see
    :mod:`tsneviz.explorer`), computes the run's nearest neighbours in
    feature space (``neighbors_<key>.npz``) when they are missing or fewer
    than ``k``, and records an ``explorer`` section and the outputs in
    ``run.json``, last.

    Args:
        run_dir (str): A complete run directory.
        key (str, optional): Feature key whose map and neighbours to show;
            default the run's first.
        k (int): Neighbours shown for a clicked sample. Defaults to 9.
        thumb_size (int): Longest side of a thumbnail in pixels. Defaults
            to 64.
        base_url (str, optional): Prefix of the page's relative URLs; None
            resolves them against the page's folder (what ``file://``
            needs).
        image_url (str, optional): URL template of a larger image of the
            focused sample, e.g. ``'/api/runs/{run}/images/{index}'``;
            None shows its thumbnail.
        show_progress (bool): Draw progress bars. Defaults to False.

    Returns:
        str: Path of ``index.html``.

    Examples:
        >>> page = write_explorer('work_dirs/digits/tsne_20261123_144017')
        >>> print('file://' + osp.abspath(page))
        file:///.../tsne_20261123_144017/index.html
    """
    run = Run(run_dir)
    key = run.key(key)
    if len(run) < 2:
        raise UserError(f'{run_dir} has {len(run)} sample; the explorer '
                        'needs at least 2')
    k = check_k(k)
    os.makedirs(osp.join(run_dir, DATA_DIR), exist_ok=True)
    thumbs = write_thumbnails(run_dir, run.image_paths, thumb_size,
                              show_progress)
    neighbors = point_data.write_neighbors(run, key, k, show_progress)

    cluster, cluster_items = point_data.clusters(run)
    data = point_data.columns(run, key, thumbs, cluster)
    legend = point_data.legends(run, data, cluster_items)
    point_data.write_samples(run, data, legend)
    placed = point_data.placed_columns(run, key)
    plot = figure(data, legend, cluster is not None, placed)
    name = osp.basename(osp.normpath(run_dir))
    config = dict(DEFAULT_CONFIG, run=name)
    if base_url is not None:
        config['base_url'] = base_url
    if image_url is not None:
        config['image_url'] = image_url
    meta = dict(run=name, key=key, n=len(run), k=neighbors['k'],
                metric=neighbors['metric'],
                has_predictions=run.has_predictions,
                has_label_issues='label_issue' in run.table,
                # the scatter is 2-D: a 3-D map says which of its axes
                axes_note=flat_view_note(run.coords(key).shape[1]),
                data_prefix=run.manifest.get('data_prefix'),
                selection_shown=SELECTION_SHOWN, legends=legend,
                placed=[dict(name=p['name'], n=p['n']) for p in placed])
    page = render(f'tsneviz explorer: {name} ({key})', config, meta, plot)
    path = osp.join(run_dir, PAGE)
    write_text(path, page)

    thumb_files = thumbnail_files(run_dir)
    update_manifest(run_dir, {'explorer': dict(
        page=PAGE, key=key, k=neighbors['k'], metric=neighbors['metric'],
        thumb_size=int(thumb_size),
        n_thumbnails=len(set(thumbs[thumbs >= 0].tolist())),
        page_bytes=len(page.encode('utf-8')))},
        outputs=[PAGE, f'{DATA_DIR}/neighbors.js', f'{DATA_DIR}/samples.js']
        + thumb_files)
    return path
