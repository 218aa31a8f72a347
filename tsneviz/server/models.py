"""Request and response bodies of the REST API (pydantic; in /openapi.json).

Indices: ``position`` is a row of ``samples.csv`` (0..N-1), what the URL's
``{index}`` means; ``index`` is the sample's index in the DATASET (the
``index`` column), what selection files and exports hold.

Paths: no response names an absolute server path. A path is relative to
the server root, to the run directory or to the run's dataset root, as
each field says (:func:`tsneviz.server.security.relative_name`).
"""
from typing import Dict, List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from tsneviz.server.layout import MAX_ITER, MAX_PCA_DIMS, MAX_THREADS, TsneIn

__all__ = ['Error', 'RunSummary', 'RunList', 'Point', 'Points', 'Neighbor',
           'Neighbors', 'ClusterRow', 'Clusters', 'SelectionIn', 'Selection',
           'Selections', 'SplitsIn', 'Splits', 'TsneIn', 'JobIn', 'Job',
           'Jobs', 'BrokenRun', 'SelectionSummary', 'MAX_SELECTION',
           'MAX_PAGE', 'MAX_SELECTION_PAGE', 'MAX_WORKERS', 'MAX_BATCH',
           'MAX_THREADS', 'MAX_PCA_DIMS', 'MAX_ITER', 'MAX_SEED']

#: Most indices one selection may hold.
MAX_SELECTION = 100_000
#: Most points one page may hold.
MAX_PAGE = 10_000
#: Most selections one page of the listing may hold.
MAX_SELECTION_PAGE = 500
# Bounds of what a job may ask for: a job shares the machine, so neither a
# field nor a cfg_option may ask for more processes, threads or work.
#: Most data loader worker processes of a job.
MAX_WORKERS = 8
#: Largest batch of a job.
MAX_BATCH = 1024
#: Largest seed: what numpy's RandomState, scikit-learn and openTSNE take
#: (numpy's Generator and torch take more, but a job's seed reaches all).
MAX_SEED = 2 ** 32 - 1
# The t-SNE caps (MAX_THREADS, MAX_PCA_DIMS, MAX_ITER) are in
# tsneviz.server.layout, with the fields they cap.


class _Strict(BaseModel):
    # An unknown field is a typo the client should hear about.
    model_config = ConfigDict(extra='forbid')


class Error(BaseModel):
    """Every error: a status code and one message."""
    detail: str = Field(examples=['unknown run \'x\': GET /api/runs lists '
                                  'the runs served'])


class RunSummary(BaseModel):
    id: str = Field(description='run id: path under the server root, '
                    '"/" written as "~"')
    path: str = Field(description='the run directory relative to the '
                      'server root ("." when the root is the run)')
    created: Optional[str] = None
    config: Optional[str] = Field(None, description='the config the run was '
                                  'made from: its name relative to the '
                                  'server\'s configs directory when it lies '
                                  'there (as POST /api/jobs takes it), else '
                                  '"…/<file name>"')
    n_samples: int
    keys: List[str]
    classes: Optional[List[str]] = None
    clustered: bool
    has_explorer: bool
    explorer_url: str
    complete: bool = Field(description='every analysis step asked for '
                           'finished: none is pending or failed')
    pending_steps: List[str] = Field(
        default_factory=list, description='analysis steps run.json records '
        'as pending: still running, or cut short (Ctrl-C); the run is '
        "usable, and each step's tool (tools/<step>.py RUN) finishes it")
    failed_steps: List[str] = Field(
        default_factory=list, description='analysis steps that failed '
        '(run.json has the error)')


class BrokenRun(BaseModel):
    """A run directory that cannot be read; the others are still listed."""
    id: str
    status: Literal['broken'] = 'broken'
    error: str


class RunList(BaseModel):
    runs: List[RunSummary]
    broken: List[BrokenRun] = Field(default_factory=list, description='run '
                                    'directories that cannot be read')


#: What ``img_path`` in a response is.
IMG_PATH = ('the image relative to the run\'s dataset root; one outside '
            'it as "…/<file name>"')


class Point(BaseModel):
    position: int = Field(description='row of samples.csv (0..N-1)')
    index: int = Field(description='index in the dataset')
    img_path: str = Field(description=IMG_PATH)
    gt_label: int
    gt_class: Optional[str] = None
    pred_label: Optional[int] = None
    pred_class: Optional[str] = None
    score: Optional[float] = None
    entropy: Optional[float] = None
    loss: Optional[float] = None
    cluster: Optional[int] = None
    x: float
    y: float
    z: Optional[float] = None


class Points(BaseModel):
    run: str
    key: str
    total: int = Field(description='samples in the run')
    offset: int
    limit: int
    points: List[Point]


class Neighbor(BaseModel):
    position: int
    index: int
    img_path: str = Field(description=IMG_PATH)
    gt_label: int
    gt_class: Optional[str] = None
    pred_label: Optional[int] = None
    pred_class: Optional[str] = None
    correct: Optional[bool] = None
    distance: float


class Neighbors(BaseModel):
    run: str
    position: int
    k: int
    neighbors: List[Neighbor]


class ClusterRow(BaseModel):
    rank: int
    cluster: int
    size: int
    purity: Optional[float] = None
    dominant_class: Optional[str] = None
    dominant_share: Optional[float] = None
    classes: Optional[str] = None
    error_rate: Optional[float] = None
    mean_loss: Optional[float] = None
    top_confusions: Optional[str] = None


class Clusters(BaseModel):
    run: str
    clusters: List[ClusterRow]


class SelectionIn(_Strict):
    """A set of samples a person picked, e.g. a lasso in the explorer."""
    name: str = Field(min_length=1, max_length=200)
    label: Optional[str] = Field(None, max_length=200, description='class '
                                 'name to give the samples when exported')
    indices: List[int] = Field(min_length=1, max_length=MAX_SELECTION,
                               description='DATASET indices (the index '
                               'column of samples.csv)')
    note: Optional[str] = Field(None, max_length=10_000)


class Selection(SelectionIn):
    id: str
    created: str
    file: str = Field(description='selection CSV (index column) relative '
                      'to the run directory; tools/export_selection.py '
                      '--indices reads it')


class SelectionSummary(BaseModel):
    """A selection in the listing: its indices are counted, not listed."""
    id: str
    name: str
    label: Optional[str] = None
    note: Optional[str] = None
    created: str
    file: str
    n_indices: int


class Selections(BaseModel):
    run: str
    total: int = Field(description='selections of the run')
    offset: int
    limit: int
    selections: List[SelectionSummary] = Field(description='oldest first; '
                                               'GET .../selections/{id} '
                                               'has the indices')


class SplitsIn(_Strict):
    """Arguments of tools/make_splits.py; output goes to RUN/splits."""
    val_ratio: float = Field(gt=0, lt=1)
    by: Literal['cluster', 'class'] = 'cluster'
    dup_threshold: Union[float, Literal['auto']] = 'auto'
    seed: int = Field(0, ge=0, le=MAX_SEED)
    key: Optional[str] = None


class Splits(BaseModel):
    run: str
    train: str = Field(description='annotation file, relative to the run '
                       'directory')
    val: str = Field(description='annotation file, relative to the run '
                     'directory')
    duplicates: str = Field(description='near-duplicate pairs, relative to '
                            'the run directory')
    n_train: int
    n_val: int
    n_duplicate_pairs: int
    n_duplicate_groups: int
    dup_threshold: float
    strata: Dict[str, Dict[str, float]]


class JobIn(_Strict):
    """A new extraction + t-SNE run (``tools/vis_tsne.py``)."""
    config: str = Field(description='config name RELATIVE to the server\'s '
                        'configs directory, e.g. "digits/resnet18-slim_'
                        'digits.py"', examples=['digits/resnet18-slim_'
                                                'digits.py'])
    checkpoint: Optional[str] = Field(None, description='checkpoint name '
                                      'RELATIVE to the server\'s checkpoints '
                                      'directory; none: random init')
    vis_stage: Optional[str] = Field(None, max_length=200)
    class_idx: Optional[List[int]] = Field(None, max_length=10_000)
    max_num_class: int = Field(20, ge=1, le=10_000)
    max_num_samples: int = Field(100, ge=1, le=100_000)
    sampling: Literal['random', 'first'] = 'random'
    seed: Optional[int] = Field(None, ge=0, le=MAX_SEED)
    batch_size: Optional[int] = Field(None, ge=1, le=MAX_BATCH)
    num_workers: Optional[int] = Field(None, ge=0, le=MAX_WORKERS)
    token_pool: Literal['mean', 'cls'] = 'mean'
    tsne: TsneIn = Field(default_factory=TsneIn, description='layout '
                         'parameters; those of tsneviz.reduction\'s t-SNE '
                         'reducers, with the same bounds and the server\'s '
                         'caps on top')
    cfg_options: Dict[str, Union[str, int, float, bool, None,
                                 List[Union[str, int, float, bool]]]] = Field(
        default_factory=dict, description='--cfg-options; only the keys '
        'of tsneviz.server.jobspec.OPTION_CHECKS, with checked values; '
        'dataset paths must lie inside the server\'s data folders')


class Job(BaseModel):
    id: str
    state: Literal['queued', 'running', 'done', 'failed', 'cancelled',
                   'interrupted'] = Field(description='interrupted: the '
                                          'server stopped while the job '
                                          'was queued or running')
    config: str
    checkpoint: Optional[str] = None
    created: str
    started: Optional[str] = None
    finished: Optional[str] = None
    elapsed_s: Optional[float] = None
    progress: Optional[str] = Field(None, description='last line of the '
                                    'run\'s log (tsne.log, umap.log or '
                                    'pca.log) while it runs')
    run: Optional[str] = Field(None, description='run id when done')
    run_dir: Optional[str] = Field(None, description='its run directory, '
                                   'relative to the server root')
    error: Optional[str] = None


class Jobs(BaseModel):
    jobs: List[Job] = Field(description='newest first')
