"""The options of a run, grouped by the step that reads them."""
from dataclasses import dataclass
from typing import List, Optional, Sequence


@dataclass
class RunOptions:
    """What every run shares, from the layout on: how it is drawn and what
    follows it.

    Attributes:
        method (str): The ``--method``, a key of ``REDUCERS``. Defaults to
            ``'tsne'``.
        seed (int): Seed of the layout, metrics and clustering. Defaults
            to 0.
        legend (bool, optional): Force the legend on or off; None: shown
            up to 30 classes.
        show (bool): Also show the plot in a window. Defaults to False.
        show_progress (bool): Draw progress bars. Defaults to True.
        analysis (Sequence[str], optional): ``ANALYSIS_STEPS`` to run
            after the run is written; None: all of them, ``()``: none.
        argv (list[str], optional): The command line, for ``run.json``;
            None: ``sys.argv``.

    Examples:
        >>> RunOptions(method='pca', analysis=()).method
        'pca'
    """

    method: str = 'tsne'
    seed: int = 0
    legend: Optional[bool] = None
    show: bool = False
    show_progress: bool = True
    analysis: Optional[Sequence[str]] = None
    argv: Optional[List[str]] = None


@dataclass
class ExtractOptions:
    """How features are taken from a model (``tools/vis_tsne.py``'s flags).

    Attributes:
        vis_stage (str, optional): Stage or module name; None: the model's
            ``extract_feat`` default.
        token_pool (str): ``'mean'`` or ``'cls'``. Defaults to ``'mean'``.
        device (str): Torch device. Defaults to ``'cpu'``.
        batch_size (int, optional): Overrides the dataloader's.
        num_workers (int, optional): Overrides the dataloader's.
        trust_checkpoint (bool): Unpickle the checkpoint fully. Defaults
            to False.
        use_cache (bool): Reuse an earlier run's features. Defaults to
            True.
    """

    vis_stage: Optional[str] = None
    token_pool: str = 'mean'
    device: str = 'cpu'
    batch_size: Optional[int] = None
    num_workers: Optional[int] = None
    trust_checkpoint: bool = False
    use_cache: bool = True


@dataclass
class SampleOptions:
    """Which samples a run looks at (``--class-idx`` and the rest).

    Attributes:
        class_idx (Sequence[int], optional): Classes; None: the first
            ``max_num_class``.
        max_num_class (int): Defaults to 20.
        max_num_samples (int): At most this many per class. Defaults to
            100.
        sampling (str): ``'random'`` or ``'first'``. Defaults to
            ``'random'``.
    """

    class_idx: Optional[Sequence[int]] = None
    max_num_class: int = 20
    max_num_samples: int = 100
    sampling: str = 'random'
