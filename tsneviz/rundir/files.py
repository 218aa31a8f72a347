"""The names of a run directory's files, and what makes them again.

Every module names a run's files through these, so that a file is renamed
in one place and no reader looks for a name no writer uses. :data:`RERUN`
and :func:`step_command` are what an error about a damaged file tells the
user to run.
"""
from typing import Optional

MANIFEST = 'run.json'
TABLE = 'samples.csv'
CONFIG = 'config.py'
LOGITS = 'logits.npy'
#: One row per cluster (:data:`CLUSTER_COLUMNS`), by ``tools/cluster.py``.
CLUSTERS = 'clusters.csv'
CONFUSION_PNG = 'confusion_matrix.png'
REPORT_MD = 'report.md'
REPORT_HTML = 'report.html'
#: The explorer's page, the folder of its data files and the packed
#: thumbnails folder (sheets and an index, :mod:`tsneviz.rundir.thumbs`).
EXPLORER_PAGE = 'index.html'
EXPLORER_DATA = 'explorer'
THUMBS = 'thumbs'
#: Default folders of the projector export, the splits and the neighbour
#: grids of ``tools/neighbors.py``.
PROJECTOR = 'projector'
SPLITS = 'splits'
NEIGHBOR_GRIDS = 'neighbors'
#: The near-duplicate pairs written beside the splits.
DUPLICATES = 'duplicates.csv'
SAMPLES_PARQUET = 'samples.parquet'
SAMPLES_EXPORT = 'samples_export.csv'


def run_dir_name(method: str, timestamp: str) -> str:
    """``<method>_<timestamp>``: the folder of a run, in its work dir.

    ``tsne_<timestamp>`` for a t-SNE run, the name mmpretrain's tool gives;
    a UMAP or PCA run is named after its method. :data:`RUN_DIRS` is the
    glob of every run's folder.

    Examples:
        >>> run_dir_name('tsne', '20261123_144017')
        'tsne_20261123_144017'
        >>> run_dir_name('umap', '20261123_144017')
        'umap_20261123_144017'
    """
    return f'{method}_{timestamp}'


#: The glob of the run folders in a work dir, whatever their method.
RUN_DIRS = run_dir_name('*', '*')


def features_file(key: str) -> str:
    """``<key>.npy``: the (N, C) features of a key such as ``feat_3``."""
    return f'{key}.npy'


def log_file(method: str) -> str:
    """``<method>.log``: the run's log, ``tsne.log`` for a t-SNE run.

    Examples:
        >>> log_file('pca'), log_file('*')  # the second is a glob
        ('pca.log', '*.log')
    """
    return f'{method}.log'


def coords_file(method: str, key: str) -> str:
    """``<method>_<key>.npy``: the (N, 2|3) layout, e.g. ``tsne_feat_3``."""
    return f'{method}_{key}.npy'


def plot_file(key: str, view: Optional[str] = None) -> str:
    """``<key>.png``, or ``<key>_<view>.png`` for another view of it."""
    return f'{key}.png' if view is None else f'{key}_{view}.png'


def neighbors_file(key: str) -> str:
    """``neighbors_<key>.npz``: the stored k nearest neighbours."""
    return f'neighbors_{key}.npz'


def bulk_file(key: str) -> str:
    """``bulk_<key>.csv``: the default Bulk export of a key."""
    return f'bulk_{key}.csv'


# What an error about a damaged file of the run tells the user to do.
RERUN = 'run tools/vis_tsne.py again'


# How each analysis step is run again on its own is the ``tool`` of its
# entry in tsneviz.registry.ANALYSIS_STEPS (tsneviz/analysis/steps.py).
def step_command(step: str, run_dir: str) -> str:
    """The command line that runs one analysis step again."""
    from tsneviz.cli import shell_command, tool_command
    from tsneviz.registry import ANALYSIS_STEPS
    tool = getattr(ANALYSIS_STEPS.get(step), 'tool', None)
    command = tool and tool_command(tool, run_dir)
    if command:
        return command
    # a step without a tool of its own (neighbors), or called from outside
    # the tools (no tools folder known), runs through the API
    return shell_command('python', '-c', 'from tsneviz.apis import '
                         f'analyze_run; analyze_run({run_dir!r}, [{step!r}])')
