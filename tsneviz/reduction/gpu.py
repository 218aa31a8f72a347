"""GPU t-SNE backends: torchdr, cuML and tsne-cuda.

Each is a ``--backend`` of ``--method tsne`` (an entry of
:data:`~tsneviz.registry.TSNE_BACKENDS`), takes the same flags as openTSNE
and scikit-learn, and imports its library only when it is built: a missing
package is a one-line :class:`~tsneviz.errors.UserError` naming what to
``pip install``. ``--backend auto`` (:func:`tsneviz.reduction.tsne.auto.
auto_backend`) picks one of them when CUDA is available. Their maps take
new points through openTSNE (:meth:`~tsneviz.reduction.tsne.base.TSNE.
transform`).

How each parameter reaches each backend (also in the README):

======================== ===================== ============== ===============
parameter                torchdr               cuML           tsne-cuda
======================== ===================== ============== ===============
n_components             n_components          2 only (else   2 only (else
                                               refused)       refused)
perplexity               perplexity            perplexity,    perplexity
                                               n_neighbors =
                                               3 x perplexity
early_exaggeration       early_exaggeration_   early_         early_
                         coeff (250 iters)     exaggeration   exaggeration
learning_rate            lr ('auto': N / EE /  learning_rate; learning_rate;
                         4, at least 50)       'auto' as      'auto' as
                                               torchdr        torchdr
n_iter                   max_iter              n_iter /       n_iter
                                               max_iter
n_iter_without_progress  ignored (warned)      ignored        n_iter_without_
                                               (warned)       progress
init                     init ('random' is     init ('pca',   'random' only
                         'normal'; an array)   'random')
metric                   'sqeuclidean'; cosine: rows scaled to unit length,
                         then the same (same neighbours as cosine)
seed                     random_state          random_state   random_seed
n_jobs                   torch threads (CPU)   ignored        ignored
pca_dims                 PCA before the kNN    PCA first      PCA first
device                   'auto': CUDA when     (always GPU)   (always GPU)
                         available, else CPU
torchdr_backend          backend: 'torch' (N x N memory), 'keops', 'faiss'
======================== ===================== ============== ===============

The learning rate of all three is on scikit-learn's scale (their gradients
carry its factor 4), so ``'auto'`` is scikit-learn's rule rather than
openTSNE's N / early exaggeration: the same step size in the end.
"""
import importlib
import inspect
import os
from contextlib import contextmanager
from typing import Optional

import numpy as np
from mmengine.logging import MMLogger

from tsneviz.errors import UserError
from tsneviz.params import Options
from tsneviz.registry import TSNE_BACKENDS

from .tsne.base import CHECK_EVERY, EARLY_EXAGGERATION_ITER, TSNE

TORCHDR_ONLY = {
    # 'auto' is CUDA when torch sees a GPU, else the CPU (how the tests
    # run it): torchdr's own 'auto' follows the input array, which is
    # always on the CPU here.
    'device': [Options(['auto', 'cpu', 'cuda'])],
    # torchdr's ``backend``: 'torch' keeps N x N matrices (fine to some
    # tens of thousands of points on a large GPU), 'keops' (pykeops) and
    # 'faiss' (faiss) avoid them.
    'torchdr_backend': [Options(['torch', 'keops', 'faiss'])],
}


# Dense N x N float32 matrices torchdr's 'torch' backend holds at once
# (affinities, kernel, gradient terms), and the share of free memory they
# may take.
DENSE_MATRICES = 3
DENSE_MEMORY_SHARE = 0.8


def check_dense_memory(n_samples: int, device: str) -> None:
    """Refuse a dense torchdr fit that cannot fit in memory, in one line.

    The 'torch' backend keeps N x N matrices: 100k points need about 120 GB,
    which would otherwise end in an out-of-memory kill (or the OS's swap)
    long after the fit started.
    """
    import torch

    need = DENSE_MATRICES * 4 * n_samples ** 2
    if device == 'cuda':
        free = torch.cuda.mem_get_info()[0]
    else:
        free = os.sysconf('SC_AVPHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')
    if need > DENSE_MEMORY_SHARE * free:
        raise UserError(
            f"torchdr's 'torch' backend keeps {n_samples:,} x {n_samples:,} "
            f'matrices (about {need / 2**30:.0f} GiB; {free / 2**30:.0f} GiB '
            f"free on the {device}); set torchdr_backend='keops' or 'faiss' "
            'in the config, or use --backend opentsne')


def auto_learning_rate(n_samples: int, early_exaggeration: float) -> float:
    """scikit-learn's ``learning_rate='auto'``: max(N / EE / 4, 50).

    Belkina et al. (2019) on scikit-learn's gradient scale, which cuML,
    tsne-cuda and torchdr share.

    Examples:
        >>> auto_learning_rate(60000, 12.0)
        1250.0
    """
    return max(n_samples / early_exaggeration / 4, 50.0)


def unit_rows(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length: Euclidean neighbours become cosine ones.

    On unit vectors the squared Euclidean distance is twice the cosine
    distance, so the neighbours and their order are the same; only the
    kernel's scale differs, and the perplexity calibration absorbs that.
    """
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return (X / np.maximum(norms, np.finfo(np.float32).tiny)).astype(
        np.float32)


class GPUTSNE(TSNE):
    """What the GPU backends share: a lazily imported library.

    Subclasses name the ``module`` to import and the pip ``package`` that
    provides it; building one without the package installed is a one-line
    UserError that names it.
    """

    module = ''
    package = ''
    # Only 2-D layouts, only these named starts; None: no limit.
    max_components: Optional[int] = None
    inits: tuple = ('pca', 'random')
    takes_start_layout = False

    @classmethod
    def importable(cls) -> bool:
        """Whether the backend's library imports here."""
        try:
            importlib.import_module(cls.module)
        except Exception:  # a CUDA library can fail with any error
            return False
        return True

    def library(self):
        """The imported library, or a UserError naming the package."""
        try:
            return importlib.import_module(self.module)
        except ImportError as error:
            raise UserError(
                f'--backend {self.backend} needs the {self.package} package '
                f'({error}); pip install {self.package}, or use --backend '
                'opentsne') from None
        except Exception as error:  # installed, but no driver or GPU
            first = (str(error).strip().splitlines() or [''])[0]
            raise UserError(
                f'--backend {self.backend}: {self.module} is installed but '
                f'does not load ({type(error).__name__}: {first}); check '
                'the GPU and CUDA driver, or use --backend opentsne') \
                from None

    def __init__(self, **params):
        super().__init__(**params)
        self.library()
        p = self.params
        if self.max_components and p['n_components'] > self.max_components:
            raise UserError(
                f'--backend {self.backend} only makes '
                f'{self.max_components}-D layouts, not n_components='
                f'{p["n_components"]}; use --backend torchdr or opentsne')
        init = p['init']
        if isinstance(init, np.ndarray):
            if not self.takes_start_layout:
                raise UserError(
                    f'--backend {self.backend} cannot start from a given '
                    'layout; use --backend torchdr or opentsne')
        elif init not in self.inits:
            raise UserError(
                f'--backend {self.backend} has no init={init!r}; use '
                f'{" or ".join(map(repr, self.inits))}')

    def prepare(self, X: np.ndarray) -> np.ndarray:
        """The features the library sees: PCA, and unit rows for cosine."""
        X = self.reduce_dims(X)
        return unit_rows(X) if self.params['metric'] == 'cosine' else X

    def learning_rate(self, n_samples: int) -> float:
        """The learning rate to pass: ``'auto'`` resolved for N samples."""
        p = self.params
        if p['learning_rate'] == 'auto':
            return auto_learning_rate(n_samples, p['early_exaggeration'])
        return float(p['learning_rate'])


@TSNE_BACKENDS.register_module(name='torchdr')
class TorchdrTSNE(GPUTSNE):
    """t-SNE of torchdr (Van Assel et al., 2024) on torch: GPU or CPU.

    Exact repulsion over all pairs (``torchdr_backend='torch'``) or
    through KeOps / FAISS; sparse input affinities from the exact
    neighbours. On the CPU it is slow past a few thousand points (tests
    run it there on small samples); on a GPU see
    ``benchmarks/bench_gpu.py``.

    Examples:
        >>> reducer = TorchdrTSNE(perplexity=20.0, n_jobs=1)
        >>> reducer.fit_transform(np.random.rand(300, 16)).shape
        (300, 2)
    """

    name = 'TorchdrTSNE'
    backend = 'torchdr'
    module = 'torchdr'
    package = 'torchdr'
    own_constraints = TORCHDR_ONLY
    inits = ('pca', 'random')
    takes_start_layout = True
    unsupported = {'n_iter_without_progress': -1}
    defaults = dict(n_components=2, perplexity=30.0, early_exaggeration=12.0,
                    learning_rate='auto', n_iter=1000,
                    n_iter_without_progress=-1, init='pca',
                    metric='euclidean', seed=0, n_jobs=-1, pca_dims=50,
                    device='auto', torchdr_backend='torch')

    def device(self) -> str:
        """The torch device the fit runs on."""
        if self.params['device'] != 'auto':
            return self.params['device']
        import torch
        return 'cuda' if torch.cuda.is_available() else 'cpu'

    def _fit(self, X, graph, progress):
        import torch
        torchdr = self.library()

        p = self.params
        X = self.prepare(X)
        total = p['n_iter']
        device = self.device()
        if device == 'cuda' and not torch.cuda.is_available():
            raise UserError('torchdr: device=cuda but torch sees no CUDA '
                            "GPU; use device='auto' or 'cpu'")
        if p['torchdr_backend'] == 'torch':
            check_dense_memory(len(X), device)

        class Reporting(torchdr.TSNE):
            """torchdr's t-SNE with tsneviz's progress every 50 steps."""

            def on_training_step_end(self):
                out = super().on_training_step_end()
                done = int(self.n_iter_) + 1
                if progress is not None and done % CHECK_EVERY == 0:
                    progress(min(done, total), total, None)
                return out

        init = p['init']
        if isinstance(init, np.ndarray):
            init = np.asarray(init, np.float32)
        elif init == 'random':
            init = 'normal'  # torchdr's name for a Gaussian start
        tsne = Reporting(
            perplexity=self.perplexity_, n_components=p['n_components'],
            lr=p['learning_rate'], init=init,
            max_iter=total,
            early_exaggeration_coeff=p['early_exaggeration'],
            early_exaggeration_iter=EARLY_EXAGGERATION_ITER,
            metric='sqeuclidean', device=device,
            backend=None if p['torchdr_backend'] == 'torch'
            else p['torchdr_backend'],
            random_state=p['seed'], verbose=False)
        with _torch_threads(p['n_jobs'] if device == 'cpu' else -1):
            embedding = tsne.fit_transform(X)
        if isinstance(embedding, torch.Tensor):
            embedding = embedding.detach().cpu().numpy()
        coords = np.asarray(embedding, dtype=np.float32)
        # torchdr stops early only on a vanishing gradient.
        self.n_iter_ = min(total, int(tsne.n_iter_) + 1)
        # torchdr's loss leaves out the entropy of P: it is not the KL.
        self.kl_divergence_ = None
        self.device_ = device
        if progress is not None:
            progress(total, total, None)
        return coords

    def results(self) -> dict:
        results = super().results()
        if hasattr(self, 'device_'):
            results['device'] = self.device_
        return results


@contextmanager
def _torch_threads(n_jobs: int):
    """torch's CPU threads set to ``n_jobs`` for a block (-1: unchanged).

    On a busy machine torch's spinning OpenMP threads can make a small
    t-SNE a hundred times slower than one thread; ``n_jobs`` is the way
    to say how many cores are really there.
    """
    import torch
    before = torch.get_num_threads()
    if n_jobs is not None and n_jobs > 0:
        torch.set_num_threads(n_jobs)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _known_kwargs(cls, kwargs: dict, backend: str) -> dict:
    """``kwargs`` that ``cls.__init__`` takes; others dropped with a note.

    cuML renamed ``n_iter`` to ``max_iter``; an older or newer release may
    lack a keyword, which is logged rather than crashing the run.
    """
    try:
        names = set(inspect.signature(cls.__init__).parameters)
    except (TypeError, ValueError):  # a compiled class: pass them all
        return kwargs
    if any(p.kind is p.VAR_KEYWORD
           for p in inspect.signature(cls.__init__).parameters.values()):
        return kwargs
    dropped = sorted(set(kwargs) - names)
    if dropped:
        MMLogger.get_current_instance().warning(
            '%s: this release takes no %s; left at its default', backend,
            ', '.join(dropped))
    return {k: v for k, v in kwargs.items() if k in names}


def _fit_library(reducer: TSNE, tsne, X, total: int, progress):
    """Run a GPU library's fitted-in-one-call t-SNE and keep its results.

    cuML and tsne-cuda report no progress while they run: the bar shows
    the start and the end.
    """
    if progress is not None:
        progress(0, total, None)
    reducer.embedding_ = np.asarray(tsne.fit_transform(X), np.float32)
    kl = getattr(tsne, 'kl_divergence_', None)
    reducer.kl_divergence_ = None if kl is None else float(kl)
    reducer.n_iter_ = total
    if progress is not None:
        progress(total, total, reducer.kl_divergence_)
    return reducer.embedding_


@TSNE_BACKENDS.register_module(name='cuml')
class CumlTSNE(GPUTSNE):
    """FFT t-SNE of RAPIDS cuML on an NVIDIA GPU (``pip install cuml-cu12``).

    cuML's adaptive learning rate also retunes the perplexity and the
    exaggeration by input size; it is turned off
    (``learning_rate_method='none'``) so that the flags mean what they
    say, and ``'auto'`` is resolved here instead.
    """

    name = 'CumlTSNE'
    backend = 'cuml'
    module = 'cuml'
    package = 'cuml-cu12'
    max_components = 2
    unsupported = {'n_iter_without_progress': -1, 'n_jobs': -1}
    defaults = dict(n_components=2, perplexity=30.0, early_exaggeration=12.0,
                    learning_rate='auto', n_iter=1000,
                    n_iter_without_progress=-1, init='pca',
                    metric='euclidean', seed=0, n_jobs=-1, pca_dims=50)

    def _fit(self, X, graph, progress):
        from cuml.manifold import TSNE

        p = self.params
        X = self.prepare(X)
        total = p['n_iter']
        params = inspect.signature(TSNE.__init__).parameters
        iters = 'max_iter' if 'max_iter' in params else 'n_iter'
        kwargs = _known_kwargs(TSNE, {
            'n_components': 2, 'perplexity': self.perplexity_,
            'n_neighbors': int(min(len(X) - 1, 1023,
                                   max(1, np.ceil(3 * self.perplexity_)))),
            'early_exaggeration': p['early_exaggeration'],
            'learning_rate': self.learning_rate(len(X)),
            'learning_rate_method': 'none', iters: total,
            'exaggeration_iter': EARLY_EXAGGERATION_ITER,
            'init': p['init'], 'metric': 'euclidean', 'method': 'fft',
            'random_state': p['seed'], 'output_type': 'numpy'}, 'cuml')
        return _fit_library(self, TSNE(**kwargs), X, total, progress)


@TSNE_BACKENDS.register_module(name='tsnecuda')
class TsnecudaTSNE(GPUTSNE):
    """Barnes-Hut/FFT t-SNE of tsne-cuda (Chan et al., 2019).

    ``pip install tsnecuda`` (it needs a matching CUDA and FAISS-GPU).
    It only starts from a random layout, hence ``init='random'`` by
    default here.
    """

    name = 'TsnecudaTSNE'
    backend = 'tsnecuda'
    module = 'tsnecuda'
    package = 'tsnecuda'
    max_components = 2
    inits = ('random', )
    unsupported = {'n_jobs': -1}
    defaults = dict(n_components=2, perplexity=30.0, early_exaggeration=12.0,
                    learning_rate='auto', n_iter=1000,
                    n_iter_without_progress=300, init='random',
                    metric='euclidean', seed=0, n_jobs=-1, pca_dims=50)

    def _fit(self, X, graph, progress):
        from tsnecuda import TSNE

        p = self.params
        X = self.prepare(X)
        total = p['n_iter']
        patience = p['n_iter_without_progress']
        kwargs = _known_kwargs(TSNE, {
            'n_components': 2, 'perplexity': self.perplexity_,
            'early_exaggeration': p['early_exaggeration'],
            'learning_rate': self.learning_rate(len(X)), 'n_iter': total,
            'n_iter_without_progress': total if patience < 0 else patience,
            'force_magnify_iters': EARLY_EXAGGERATION_ITER,
            'init': 'random', 'metric': 'euclidean',
            'random_seed': p['seed'], 'verbose': 0}, 'tsnecuda')
        return _fit_library(self, TSNE(**kwargs), X, total, progress)


__all__ = ['CumlTSNE', 'GPUTSNE', 'TorchdrTSNE', 'TsnecudaTSNE',
           'auto_learning_rate', 'unit_rows']
