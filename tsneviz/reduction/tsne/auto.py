"""``--backend auto``, and the build of a t-SNE reducer from a backend name.

``auto`` (the default) takes a GPU backend when CUDA is available and one
is installed (:mod:`tsneviz.reduction.gpu`: cuML, tsne-cuda, torchdr),
else openTSNE. :func:`build_tsne` is what ``REDUCERS.build(dict(type=
'tsne', backend=...))`` calls (through :meth:`TSNE.build
<tsneviz.reduction.tsne.base.TSNE.build>`).
"""
from typing import Iterable, List, Tuple

from mmengine.logging import MMLogger

from tsneviz.errors import UserError
from tsneviz.registry import TSNE_BACKENDS, registered

# ``--backend auto``: the backend is chosen when the reducer is built.
AUTO = 'auto'
# The GPU backends ``auto`` prefers, fastest first (the published figures
# are in benchmarks/README.md, ``## bench_gpu.py``); torchdr is plain
# torch, so it runs wherever torch has CUDA.
GPU_PREFERENCE = ('cuml', 'tsnecuda', 'torchdr')
# What ``auto`` falls back to, and always runs.
CPU_BACKEND = 'opentsne'


def auto_candidates(cuda_available: bool,
                    importable: Iterable[str]) -> List[str]:
    """The backends ``--backend auto`` tries, best first.

    With CUDA, the GPU backends whose package imports, in the order of
    :data:`GPU_PREFERENCE`; openTSNE always comes last (and alone without
    CUDA: the GPU libraries are not even imported then).

    Args:
        cuda_available (bool): ``torch.cuda.is_available()``.
        importable (Iterable[str]): The GPU backends whose package imports.

    Returns:
        list[str]: Backend names, ending with ``'opentsne'``.

    Examples:
        >>> auto_candidates(True, ['torchdr', 'cuml'])
        ['cuml', 'torchdr', 'opentsne']
        >>> auto_candidates(False, ['torchdr'])
        ['opentsne']
    """
    found = set(importable)
    gpu = [name for name in GPU_PREFERENCE if name in found] \
        if cuda_available else []
    return gpu + [CPU_BACKEND]


def choose_backend(cuda_available: bool, importable: Iterable[str]) -> str:
    """The backend ``--backend auto`` picks: the first of the candidates.

    Examples:
        >>> choose_backend(True, ['tsnecuda', 'torchdr'])
        'tsnecuda'
        >>> choose_backend(False, ['cuml'])
        'opentsne'
    """
    return auto_candidates(cuda_available, importable)[0]


def _gpu_state() -> Tuple[bool, List[str]]:
    """``(cuda available, importable GPU backends)`` on this machine."""
    import torch
    if not torch.cuda.is_available():
        return False, []
    backends = registered(TSNE_BACKENDS)
    return True, [name for name in GPU_PREFERENCE if name in backends
                  and backends[name].importable()]


def auto_backend() -> str:
    """The backend ``--backend auto`` picks here, before any parameters.

    Examples:
        >>> auto_backend()  # on a machine without CUDA
        'opentsne'
    """
    return choose_backend(*_gpu_state())


def build_auto(**params):
    """Build the reducer of ``--backend auto`` for these parameters.

    The candidates of :func:`auto_candidates` are tried in order; one that
    refuses the parameters (``--n-components 3`` on cuML, say) is passed
    over with a warning, so ``auto`` never fails where openTSNE would run.
    The reducer's ``backend`` is the one really used, which run.json
    records.

    Returns:
        TSNE: The backend's reducer.
    """
    backends = registered(TSNE_BACKENDS)
    candidates = auto_candidates(*_gpu_state())
    for name in candidates[:-1]:
        try:
            return backends[name](**params)
        except UserError as refused:
            MMLogger.get_current_instance().warning(
                '--backend auto passes over %s: %s', name, refused)
    return backends[candidates[-1]](**params)


def build_tsne(backend: str = AUTO, **params):
    """Build a t-SNE reducer from a ``--backend`` name and parameters.

    The same as ``build_reducer('tsne', backend=backend, **params)`` and
    ``REDUCERS.build(dict(type='tsne', backend=backend, ...))``.

    Args:
        backend (str): A key of ``TSNE_BACKENDS`` (``'opentsne'``,
            ``'sklearn'``, ``'torchdr'``, ``'cuml'``, ``'tsnecuda'``) or
            ``'auto'`` (:func:`auto_backend`).
            Defaults to ``'auto'``.
        **params: Hyper-parameters; a parameter left out takes the
            backend's default.

    Returns:
        TSNE: The validated, unfitted reducer: an instance of the backend's
        class, a subclass of :class:`~tsneviz.reduction.tsne.base.TSNE`.

    Examples:
        >>> build_tsne('sklearn', perplexity=10.0).params['perplexity']
        10.0
    """
    if backend == AUTO:
        return build_auto(**params)
    backends = registered(TSNE_BACKENDS)
    if backend not in backends:
        raise UserError(f'unknown t-SNE backend {backend!r}; choose one '
                        f'of {", ".join([AUTO, *backends])}')
    return backends[backend](**params)
