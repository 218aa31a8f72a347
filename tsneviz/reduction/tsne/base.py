"""What the t-SNE backends share: ``--method tsne``, its parameters, and
the placing of new points on any t-SNE map.

Every backend takes the hyper-parameters of mmpretrain's ``vis_tsne.py``
with the same names and meaning; ``n_iter`` is the total number of
iterations, early exaggeration included, as in scikit-learn's
``max_iter``.

How each parameter reaches the CPU backends (also in the README; the GPU
ones: :mod:`tsneviz.reduction.gpu`):

======================== ============================== =======================
parameter                openTSNE                       scikit-learn
======================== ============================== =======================
n_components             n_components (3-D uses BH)     n_components
perplexity               perplexity                     perplexity
early_exaggeration       early_exaggeration             early_exaggeration
learning_rate            learning_rate ('auto' too)     learning_rate
n_iter                   250 exaggerated + rest normal  max_iter
n_iter_without_progress  KL check every 50 iterations   n_iter_without_progress
init                     initialization                 init ('spectral': no)
metric                   metric                         metric
seed                     random_state                   random_state
n_jobs                   n_jobs (gradient and kNN)      n_jobs (kNN only)
pca_dims                 PCA before the kNN search      PCA before the kNN
kl_tol                   relative KL gain that counts   ignored (warned)
                         as progress
ints_in_interval         FFT grid cell size (2)         ignored (warned)
negative_gradient_method 'auto': FFT from 5000 points, ignored (warned)
                         else Barnes-Hut
neighbors                neighbors                      ignored (warned)
method, angle            ignored (warned)               method, angle
======================== ============================== =======================
"""
import numbers
from typing import Optional

import numpy as np
from mmengine.logging import MMLogger

from tsneviz.errors import UserError
from tsneviz.params import Array, Interval, Options
from tsneviz.registry import REDUCERS, TSNE_BACKENDS, registered

from ..base import BaseReducer, ProgressFn
from .auto import AUTO, build_tsne

# scikit-learn's exploration phase is fixed at 250 iterations
# (``sklearn.manifold._t_sne._EXPLORATION_MAX_ITER``); openTSNE gets the same
# split so that ``n_iter`` means the same total on both backends.
EARLY_EXAGGERATION_ITER = 250
# Both libraries look at progress every 50 iterations.
CHECK_EVERY = 50
# Fewer samples than this are refused: the perplexity must stay below N and
# at least 1/3 (openTSNE looks at int(3 x perplexity) neighbours, and at
# none below that), and a map of two points shows nothing. From 3 samples
# the separation metrics (10-NN accuracy, trustworthiness) are computed too.
MIN_SAMPLES = 3
# The backend that places new points on a t-SNE map, whichever backend
# made it: openTSNE optimises them against the fixed map (Poličar et al.,
# 2024), which needs only the map and the features it was made of.
PLACING_BACKEND = 'opentsne'


COMMON_CONSTRAINTS = {
    'n_components': [Interval(numbers.Integral, 2, 3)],
    'perplexity': [Interval(numbers.Real, 0, open_low=True)],
    'early_exaggeration': [Interval(numbers.Real, 1)],
    'learning_rate': [Options(['auto']),
                      Interval(numbers.Real, 0, open_low=True)],
    'n_iter': [Interval(numbers.Integral, EARLY_EXAGGERATION_ITER)],
    'n_iter_without_progress': [Interval(numbers.Integral, -1)],
    # An (N, n_components) array starts from a given layout, e.g. another
    # run's map, so that two checkpoints are drawn from the same start.
    'init': [Options(['pca', 'random', 'spectral']), Array(2)],
    'metric': [Options(['euclidean', 'cosine'])],
    'seed': [Interval(numbers.Integral, 0)],
    'n_jobs': [Interval(numbers.Integral, -1)],
    'pca_dims': [None, Interval(numbers.Integral, 0)],
}
OPENTSNE_ONLY = {
    'kl_tol': [Interval(numbers.Real, 0)],
    'ints_in_interval': [Interval(numbers.Real, 0, open_low=True)],
    'negative_gradient_method': [Options(['auto', 'fft', 'bh'])],
    'neighbors': [Options(['auto', 'exact', 'annoy', 'pynndescent'])],
}
SKLEARN_ONLY = {
    'method': [Options(['barnes_hut', 'exact'])],
    'angle': [Interval(numbers.Real, 0, 1)],
}
BACKEND_ONLY = {**OPENTSNE_ONLY, **SKLEARN_ONLY}


def backend_only_keys() -> set:
    """The parameters some registered backend has and others lack.

    A backend registered later (``tsneviz.reduction.gpu``) adds its own,
    so every other backend drops them with a warning rather than failing.
    """
    keys = set(BACKEND_ONLY)
    for impl in registered(TSNE_BACKENDS).values():
        keys.update(getattr(impl, 'own_constraints', {}))
    return keys


def suggested_perplexity(n_samples: int) -> float:
    """A perplexity that runs on both backends for ``n_samples`` samples.

    About a third of the samples (openTSNE's own ceiling is (N - 1) / 3),
    at least 1, and always below N for N >= :data:`MIN_SAMPLES`.

    Examples:
        >>> suggested_perplexity(100)
        33.0
    """
    return float(max(1, (n_samples - 1) // 3))


@REDUCERS.register_module(name='tsne')
class TSNE(BaseReducer):
    """``--method tsne``: the class of every t-SNE backend.

    Building it (``REDUCERS.build(dict(type='tsne', backend=...))``,
    :meth:`build`) gives the reducer of a backend of
    :data:`~tsneviz.registry.TSNE_BACKENDS` (openTSNE, scikit-learn, or
    any registered later), a subclass; ``backend`` is a nested choice of
    the method rather than a method of its own. Backends implement
    :meth:`_fit`.

    Fitted state ends in an underscore (``embedding_``, ``kl_divergence_``,
    ``n_iter_``, ``perplexity_``), as in scikit-learn.

    Args:
        **params: Hyper-parameters by name; see the module table. Parameters
            that only another backend understands are dropped with a
            warning; unknown ones are an error.

    Examples:
        >>> reducer = REDUCERS.build(dict(type='tsne', backend='sklearn'))
        >>> isinstance(reducer, TSNE), reducer.backend
        (True, 'sklearn')
    """

    name = 't-SNE'
    #: The ``--backend`` key of a backend class; '' on this class, which
    #: builds one.
    backend = ''
    own_constraints: dict = {}
    # The parameters that are command-line flags, with their help; the
    # defaults are added from ``defaults`` (tsneviz.reduction.fields).
    descriptions = {
        'backend': 't-SNE implementation: auto (a GPU backend when CUDA is '
        'available and one is installed: cuml, then tsnecuda, then '
        'torchdr; else opentsne), opentsne (FFT-accelerated), sklearn '
        "(Barnes-Hut, for parity with mmpretrain's tool), torchdr, cuml "
        'or tsnecuda (GPU).',
        'n_components': 'the dimension of results: 2 or 3.',
        'perplexity': 'The perplexity is related to the number of nearest '
        'neighbors that is used in other manifold learning algorithms.',
        'early_exaggeration': 'Controls how tight natural clusters in the '
        'original space are in the embedded space and how much space will '
        'be between them.',
        'learning_rate': "A number, or 'auto' (N / early exaggeration); "
        "mmpretrain's tool: 200.",
        'n_iter': 'Maximum number of iterations for the optimization, early '
        'exaggeration included. Should be at least 250.',
        'n_iter_without_progress': 'Maximum number of iterations without '
        'progress before we abort the optimization (-1: never); opentsne '
        'counts a KL gain below 1% (kl_tol) as none.',
        'init': 'The init method: pca, random or spectral (opentsne only); '
        "mmpretrain's tool: random.",
        'metric': 'Distance in feature space.',
        'pca_dims': 'PCA to this many dimensions before the neighbour '
        'search; 0 turns it off.',
        'n_jobs': 'Threads for the layout (-1: all cores).',
    }
    placement = 'openTSNE TSNEEmbedding.transform (map fixed)'

    # Common parameters the backend's library has no counterpart for,
    # with the value that asks for nothing: another value given is
    # ignored with a warning and recorded in ``ignored_``.
    unsupported: dict = {}

    @classmethod
    def declared(cls) -> dict:
        """Every backend's parameters, with each backend's default."""
        backends = registered(TSNE_BACKENDS)
        table = {'backend': ([Options([AUTO, *backends])], {'': AUTO})}
        for key, impl in backends.items():
            for name, row in {**COMMON_CONSTRAINTS,
                              **impl.own_constraints}.items():
                table.setdefault(name, (row, {}))[1][key] = \
                    impl.defaults.get(name)
        return table

    @classmethod
    def build(cls, **settings) -> 'TSNE':
        """The backend reducer ``backend`` names (``'auto'`` if not given).

        A backend class builds itself (``backend`` is then no setting).

        Examples:
            >>> TSNE.build(backend='sklearn', perplexity=5.0).describe()
            'sklearn t-SNE · perplexity 5'
        """
        if cls.backend:
            return cls(**settings)
        return build_tsne(**settings)

    @classmethod
    def from_map(cls, params: dict, X: np.ndarray,
                 embedding: np.ndarray) -> 'TSNE':
        """The t-SNE map made earlier, ready to place new points on.

        Whichever backend made the map, the reducer is openTSNE's
        (:data:`PLACING_BACKEND`) with the map's own settings: the
        parameters it shares with that backend, its defaults for the rest
        (``ints_in_interval``, the gradient method), and the map's
        dimension. The start layout (``init``) is no part of placing.

        Args:
            params (dict): The parameters the map was made with.
            X (np.ndarray): (N, C) features the map was made of.
            embedding (np.ndarray): (N, 2|3) the map.

        Returns:
            TSNE: Fitted to the map (``embedding_``, ``perplexity_``).
        """
        placer = registered(TSNE_BACKENDS)[PLACING_BACKEND]
        own = {**COMMON_CONSTRAINTS, **placer.own_constraints}
        kept = {k: v for k, v in params.items() if k in own and k != 'init'}
        embedding = np.asarray(embedding, dtype=np.float32)
        reducer = placer(**dict(kept, n_components=embedding.shape[1]))
        reducer.perplexity_ = reducer.perplexity_for(len(X))
        reducer._set_map(X, embedding)
        return reducer

    def __init__(self, **params):
        self.constraints = {**COMMON_CONSTRAINTS, **self.own_constraints}
        ignored = sorted(k for k in params
                         if k in backend_only_keys()
                         and k not in self.constraints)
        for key in ignored:
            MMLogger.get_current_instance().warning(
                '%s ignores %s=%r (it only applies to another t-SNE '
                'backend)', self.name, key, params[key])
        unhonoured = sorted(
            k for k, neutral in self.unsupported.items()
            if k in params and params[k] is not None
            and not isinstance(params[k], np.ndarray)
            and params[k] != neutral)
        for key in unhonoured:
            MMLogger.get_current_instance().warning(
                '%s ignores %s=%r (%s has no such setting)', self.name, key,
                params[key], self.backend)
        super().__init__(**{k: v for k, v in params.items()
                            if k not in ignored and k not in unhonoured})
        self.ignored_ = ignored + unhonoured
        if self.params['n_iter_without_progress'] == 0:
            raise UserError(f'{self.name}: n_iter_without_progress must be '
                            'positive, or -1 to never stop early')

    def check_n_samples(self, n_samples: int) -> None:
        """Fail early, with both numbers, when there are too few samples.

        t-SNE needs :data:`MIN_SAMPLES`; the perplexity must stay below the
        number of samples, and the value the error suggests always runs.
        """
        init = self.params['init']
        if isinstance(init, np.ndarray) and \
                init.shape != (n_samples, self.params['n_components']):
            raise UserError(f'{self.name}: the start layout has shape '
                            f'{init.shape}, the data needs '
                            f'({n_samples}, {self.params["n_components"]})')
        if n_samples < MIN_SAMPLES:
            raise UserError(
                f't-SNE needs at least {MIN_SAMPLES} samples, got '
                f'{n_samples}: a layout of fewer points shows nothing; '
                'sample more with --max-num-samples or more classes')
        perplexity = self.params['perplexity']
        if perplexity >= n_samples:
            raise UserError(
                f'perplexity {perplexity:g} is too large for {n_samples} '
                f'samples: it must be below the number of samples; lower '
                f'--perplexity (below {n_samples}, ideally about '
                f'{suggested_perplexity(n_samples):g}) or sample more with '
                '--max-num-samples')

    def perplexity_for(self, n_samples: int) -> float:
        """The perplexity a fit of ``n_samples`` samples uses.

        The one asked for; a backend that must lower it says how.
        """
        return float(self.params['perplexity'])

    def n_neighbors_for(self, n_samples: int) -> int:
        """The neighbours t-SNE's affinities look at: 3 x perplexity.

        At most N - 1; the same as 3 x :meth:`perplexity_for` where the
        perplexity is lowered to (N - 1) / 3.
        """
        return min(n_samples - 1, int(3 * self.params['perplexity']))

    def describe(self) -> str:
        p = getattr(self, 'perplexity_', self.params['perplexity'])
        return f"{self.backend} t-SNE · perplexity {p:g}"

    def results(self) -> dict:
        if not hasattr(self, 'kl_divergence_'):
            return {}
        results = dict(kl_divergence=self.kl_divergence_,
                       n_iter=self.n_iter_)
        if self.perplexity_ != self.params['perplexity']:
            results.update(perplexity=self.perplexity_,
                           perplexity_requested=self.params['perplexity'])
        return results

    def used_params(self) -> dict:
        """``params`` with the perplexity the fit used (``perplexity_``)."""
        if not hasattr(self, 'perplexity_'):
            return dict(self.params)
        return dict(self.params, perplexity=self.perplexity_)

    def sections(self) -> dict:
        """The ``tsne`` section, which runs made before other layouts
        existed have: the backend really used, and its parameters."""
        return {'tsne': dict(backend=self.backend, params=self.used_params(),
                             ignored=self.ignored_)}

    def fit_transform(self, X: np.ndarray, graph: Optional[dict] = None,
                      progress: Optional[ProgressFn] = None) -> np.ndarray:
        """Embed ``X``; see :meth:`BaseReducer.fit_transform`.

        The fit keeps ``X`` as given (no copy: a memory map stays one) for
        :meth:`transform`.
        """
        self.check_n_samples(len(X))
        self.perplexity_ = self.perplexity_for(len(X))
        self.used_graph_ = False
        self._set_map(X, self._fit(X, graph, progress))
        return self.embedding_

    def _fit(self, X: np.ndarray, graph: Optional[dict],
             progress: Optional[ProgressFn]) -> np.ndarray:
        """The backend's fit: (N, n_components) float32 coordinates.

        It sets ``kl_divergence_`` and ``n_iter_`` (and ``used_graph_``
        when it took the graph's neighbours).
        """
        raise NotImplementedError

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Place new rows on the fitted map, which stays as it is.

        openTSNE's ``TSNEEmbedding.transform`` optimises them against the
        fixed map, whichever backend made it (:meth:`from_map`).
        """
        return self.from_map(self.params, *self._fitted_map()).transform(X)

    def _set_map(self, X: np.ndarray, embedding: np.ndarray) -> None:
        self._fit_X = X
        self.embedding_ = embedding

    def _fitted_map(self):
        """``(features, embedding)`` of the fitted map, or a UserError."""
        if not hasattr(self, '_fit_X'):
            raise UserError(f'{self.name} has no map to place points on '
                            'yet; fit_transform it, or rebuild a map with '
                            'from_map(params, features, coords)')
        return self._fit_X, self.embedding_
