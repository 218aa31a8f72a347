"""t-SNE reducers: openTSNE (FFT-accelerated) and scikit-learn.

``--backend auto`` (the default) takes a GPU backend when CUDA is
available and one is installed (:mod:`tsneviz.reduction.gpu`: cuML,
tsne-cuda, torchdr), else openTSNE (:func:`auto_backend`).

Both take the hyper-parameters of mmpretrain's ``vis_tsne.py`` with the same
names and meaning; ``n_iter`` is the total number of iterations, early
exaggeration included, as in scikit-learn's ``max_iter``.

How each parameter reaches each backend (also in the README):

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
from typing import Iterable, List, Tuple

import numpy as np
from mmengine.logging import MMLogger

from tsneviz.errors import UserError
from tsneviz.params import Array, Interval, Options
from tsneviz.registry import REDUCERS, TSNE_BACKENDS, registered

from .base import BaseReducer

# scikit-learn's exploration phase is fixed at 250 iterations
# (``sklearn.manifold._t_sne._EXPLORATION_MAX_ITER``); openTSNE gets the same
# split so that ``n_iter`` means the same total on both backends.
EARLY_EXAGGERATION_ITER = 250
# Both libraries look at progress every 50 iterations.
CHECK_EVERY = 50
# From this many points 'auto' uses openTSNE's FFT gradient, below it
# Barnes-Hut. On 2 cores (benchmarks/README.md, bench_tsne.py) BH was faster
# at 2k-3k points (0.7 vs 1.3 s per 100 iterations at 2k, one thread), the
# two were within noise at 5k, and FFT was 1.2-1.7x faster at 7k and
# 1.6-2.5x at 10k, where openTSNE itself only switches.
FFT_MIN_SAMPLES = 5000
# Fewer samples than this are refused: the perplexity must stay below N and
# at least 1/3 (openTSNE looks at int(3 x perplexity) neighbours, and at
# none below that), and a map of two points shows nothing. From 3 samples
# the separation metrics (10-NN accuracy, trustworthiness) are computed too.
MIN_SAMPLES = 3
# ``--backend auto``: the backend is chosen when the reducer is built.
AUTO = 'auto'
# The GPU backends ``auto`` prefers, fastest first: cuML (1.3M points in
# 37 s on an A100, its published figure), tsne-cuda (60k in 7 s), torchdr
# (plain torch, so it runs wherever torch has CUDA).
GPU_PREFERENCE = ('cuml', 'tsnecuda', 'torchdr')
# openTSNE finds int(3 x perplexity) neighbours per point: below 1/3 that is
# none, and its kNN search fails.
OPENTSNE_MIN_PERPLEXITY = 1 / 3
# From this many points a fit on a shared graph runs in the graph's
# locality order (:func:`locality_order`). At 100k one pass of the
# attractive forces took 0.054 s instead of 0.077 s (bench_locality.py);
# below, the layout fits in the caches anyway.
LOCALITY_MIN_SAMPLES = 50_000


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


class BaseTSNE(BaseReducer):
    """Shared parameter handling of the t-SNE reducers.

    Fitted state ends in an underscore (``embedding_``, ``kl_divergence_``,
    ``n_iter_``), as in scikit-learn.

    Args:
        **params: Hyper-parameters by name; see the module table. Parameters
            that only the other backend understands are dropped with a
            warning; unknown ones are an error.
    """

    own_constraints: dict = {}
    # The parameters that are command-line flags, with their help; the
    # defaults are added from ``defaults`` (tsneviz.reduction.fields).
    descriptions = {
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

    # Common parameters the backend's library has no counterpart for,
    # with the value that asks for nothing: another value given is
    # ignored with a warning and recorded in ``ignored_``.
    unsupported: dict = {}

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
        perplexity = self.requested_perplexity
        if perplexity >= n_samples:
            raise UserError(
                f'perplexity {perplexity:g} is too large for {n_samples} '
                f'samples: it must be below the number of samples; lower '
                f'--perplexity (below {n_samples}, ideally about '
                f'{suggested_perplexity(n_samples):g}) or sample more with '
                '--max-num-samples')

    @property
    def requested_perplexity(self) -> float:
        """The perplexity asked for (``params`` holds the one used)."""
        return getattr(self, '_requested_perplexity',
                       self.params['perplexity'])

    def describe(self) -> str:
        p = self.params["perplexity"]
        return f"{self.backend} t-SNE · perplexity {p:g}"

    def results(self) -> dict:
        if not hasattr(self, 'kl_divergence_'):
            return {}
        results = dict(kl_divergence=self.kl_divergence_,
                       n_iter=self.n_iter_)
        if self.params['perplexity'] != self.requested_perplexity:
            results.update(perplexity=self.params['perplexity'],
                           perplexity_requested=self.requested_perplexity)
        return results


def suggested_perplexity(n_samples: int) -> float:
    """A perplexity that runs on both backends for ``n_samples`` samples.

    About a third of the samples (openTSNE's own ceiling is (N - 1) / 3),
    at least 1, and always below N for N >= :data:`MIN_SAMPLES`.
    """
    return float(max(1, (n_samples - 1) // 3))


class _KLConvergence:
    """openTSNE callback that stops the normal phase when KL stalls.

    scikit-learn aborts after ``n_iter_without_progress`` iterations without
    a lower KL divergence. openTSNE has no such rule, so the same check runs
    here as a callback. A gain below ``kl_tol`` (relative) does not count as
    progress: KL keeps creeping down long after the picture has stopped
    changing, and the benchmarks measured what that tolerance costs in
    trustworthiness.
    """

    def __init__(self, patience: int, kl_tol: float):
        self.patience = patience
        self.kl_tol = kl_tol
        self.best = np.inf
        self.best_iter = 0

    def __call__(self, iteration: int, error: float, embedding) -> bool:
        if error < self.best * (1 - self.kl_tol):
            self.best, self.best_iter = error, iteration
            return False
        return iteration - self.best_iter >= self.patience


def _start_layout(init):
    """openTSNE wants a given start layout at a tiny scale (std 1e-4), or
    early exaggeration cannot move it; named initialisations pass through."""
    if not isinstance(init, np.ndarray):
        return init
    from openTSNE.initialization import rescale
    return rescale(np.asarray(init, dtype=np.float64), target_std=1e-4)


def locality_order(indices: np.ndarray) -> np.ndarray:
    """An order of the samples that puts graph neighbours at nearby rows.

    openTSNE's attractive forces read, for every edge of P, the position of
    the neighbour. In the data's own order these reads jump across the
    whole layout, which at a million points (16 MB of positions) misses the
    CPU caches on nearly every edge. Reverse Cuthill-McKee on the k-NN
    graph keeps each sample's neighbours close in memory: on the 1M x 90
    graph of ``bench_scale.py``'s features one attractive-force pass took
    2.67 s instead of 5.64 s, and finding the order 14 s, with the test
    suite on the same two cores (``bench_locality.py``).

    Args:
        indices (np.ndarray): (N, k) neighbours of each sample.

    Returns:
        np.ndarray: A permutation of ``range(N)``: row ``i`` of the
        reordered data is row ``order[i]`` of the original.
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    n, k = indices.shape
    adjacency = csr_matrix(
        (np.ones(indices.size, np.int8), indices.ravel(),
         np.arange(0, indices.size + 1, k)), shape=(n, n))
    return np.asarray(reverse_cuthill_mckee(adjacency, symmetric_mode=False))


def _reorder(X, indices, distances, order: np.ndarray):
    """``X`` and its neighbours in ``order`` (a :func:`locality_order`).

    Returns:
        tuple: ``X``, ``indices`` (int64: sample positions in the new
        order) and ``distances``, each with its rows in the new order.
    """
    position = np.empty(len(order), np.int64)
    position[order] = np.arange(len(order))
    return X[order], position[indices[order]], distances[order]


def _initial_layout(init, X: np.ndarray, n_components: int, seed: int):
    """The start layout openTSNE would make of ``X``, as an array.

    Made in the data's own order, so that a fit in locality order starts
    every sample where the unordered fit would; ``'spectral'`` depends on
    P only and is left to openTSNE.
    """
    from openTSNE import initialization

    if isinstance(init, np.ndarray):
        return _start_layout(init)
    if init == 'pca':
        return initialization.pca(X, n_components, random_state=seed)
    if init == 'random':
        return initialization.random(len(X), n_components,
                                     random_state=seed)
    return init


@TSNE_BACKENDS.register_module(name='opentsne')
class OpenTSNE(BaseTSNE):
    """FFT-accelerated t-SNE from openTSNE (Poličar et al., 2024).

    The defaults differ from mmpretrain's tool where the t-SNE literature
    says so: PCA initialisation keeps the global layout and makes runs
    reproducible, and ``learning_rate='auto'`` (N / early exaggeration,
    Belkina et al. 2019) avoids the poor convergence of a fixed 200 at large
    N. The speed defaults were measured with ``benchmarks/bench_tsne.py`` on
    2 cores (figures in benchmarks/README.md, ``## bench_tsne.py``):

    * ``pca_dims=50``: the kNN search (annoy, k = 3 x perplexity) on 512-d
      features took 21-31 s at 30k points, on 50 PCA components 15-17 s
      (PCA included: 1-5 s), and trustworthiness was 0.004 higher.
    * ``kl_tol=0.01`` with ``n_iter_without_progress=50``: stop the normal
      phase at the first 50 iterations that lower KL by less than 1 %.
      Trustworthiness had stopped rising by then (30k: 0.9381 at 600
      iterations vs 0.9386 at 750 and 0.9378 at 1000; 100k: 0.9425 at both
      600 and 750), so this saves about 150 of 750 iterations (20 % of the
      optimisation; at 30k the normal phase costs ~0.17 s/iteration). The
      old 1e-3 / 300 never fired within 750 iterations.
    * ``n_iter=750`` stays as the cap: at 100k, 500 iterations gave 0.9415
      against 0.9425.
    * ``negative_gradient_method='auto'`` picks FFT from ``FFT_MIN_SAMPLES``
      points (openTSNE's own switch is at 10,000); see that constant.
    * ``n_jobs=-1``: two threads made the 30k kNN search 12 % faster
      (15.3 s vs 17.3 s); the optimisation gained 0-40 % from 5k points up.
    * ``ints_in_interval=2`` (openTSNE: 1): FFT grid cells two units wide.
      Well-separated classes (a trained model's features) spread the map
      over hundreds of units, and the FFT grid grows with that span: on
      the 10k digit features of ``bench_vs_mmpretrain.py`` the t-SNE took
      45.4 s with 1 and 14.3 s with 2, trustworthiness 0.9976 vs 0.9975.

    Examples:
        >>> reducer = REDUCERS.build(dict(type='tsne', perplexity=20.0))
        >>> coords = reducer.fit_transform(np.random.rand(500, 64))
        >>> coords.shape
        (500, 2)
    """

    name = 'OpenTSNE'
    backend = 'opentsne'
    own_constraints = OPENTSNE_ONLY
    defaults = dict(n_components=2, perplexity=30.0, early_exaggeration=12.0,
                    learning_rate='auto', n_iter=750,
                    n_iter_without_progress=50, init='pca',
                    metric='euclidean', seed=0, n_jobs=-1, pca_dims=50,
                    kl_tol=0.01, ints_in_interval=2.0,
                    negative_gradient_method='auto',
                    neighbors='auto')

    def __init__(self, **params):
        super().__init__(**params)
        if self.params['perplexity'] < OPENTSNE_MIN_PERPLEXITY:
            raise UserError(
                f'perplexity {self.params["perplexity"]:g} is too small for '
                'openTSNE: it looks at int(3 x perplexity) neighbours, so '
                'the perplexity must be at least 1/3; raise --perplexity')
        self._requested_perplexity = self.params['perplexity']

    def used_perplexity(self, n_samples: int) -> float:
        """The perplexity openTSNE really uses for ``n_samples`` samples.

        openTSNE silently lowers a perplexity above (N - 1) / 3 to that
        value; tsneviz lowers it itself, says so in the log, and records
        the value used (``params``, the plot title, run.json) along with
        the one asked for (``perplexity_requested`` in the results).
        """
        return min(self.requested_perplexity, (n_samples - 1) / 3)

    def graph_k(self, n_samples: int) -> int:
        """Neighbours openTSNE's affinities look at: int(3 x perplexity)."""
        return min(n_samples - 1, int(3 * self.used_perplexity(n_samples)))

    def use_graph(self, X_space: np.ndarray, graph: dict) -> bool:
        """Take a run's shared neighbour graph for the next fit.

        The affinities are then computed from its neighbours
        (``openTSNE.affinity.PerplexityBasedNN(knn_index=...)``) instead of
        a search of openTSNE's own, and ``X_space`` (the features in the
        graph's space) replaces the reducer's own PCA. Only a graph in this
        reducer's search space and metric, with enough neighbours, is
        taken.

        Args:
            X_space (np.ndarray): (N, D) features the graph was built on.
            graph (dict): :func:`tsneviz.analysis.graphs.shared_graph`.

        Returns:
            bool: Whether the graph will be used.
        """
        p = self.params
        # the space the t-SNE would search: its PCA, or the features
        # themselves where they have no more columns than pca_dims
        space = f'pca{p["pca_dims"]}' if p['pca_dims'] and \
            X_space.shape[1] == p['pca_dims'] else 'features'
        fits = (graph['space'] == space
                and graph['metric'] == p['metric']
                and graph['k'] >= self.graph_k(len(X_space)))
        self._graph = (X_space, graph) if fits else None
        return fits

    def fit_transform(self, X, progress=None):
        import openTSNE

        p = self.params
        graph = getattr(self, '_graph', None)
        self._graph = None  # one fit only: the next X is another key
        if graph is not None and len(graph[0]) == len(X):
            X, graph = graph
        else:
            X, graph = self.reduce_dims(X), None
        used = self.used_perplexity(len(X))
        if used != self.requested_perplexity:
            MMLogger.get_current_instance().warning(
                'perplexity %g is above what openTSNE uses for %d samples '
                '((N - 1) / 3); using %g', self.requested_perplexity,
                len(X), used)
        p['perplexity'] = used
        gradient = p['negative_gradient_method']
        if p['n_components'] > 2 and gradient != 'bh':
            # openTSNE's FFT interpolation only exists for 1-D and 2-D.
            gradient = 'bh'
        elif gradient == 'auto':
            gradient = 'fft' if len(X) >= FFT_MIN_SAMPLES else 'bh'
        tsne = openTSNE.TSNE(
            n_components=p['n_components'],
            perplexity=p['perplexity'],
            learning_rate=p['learning_rate'],
            early_exaggeration=p['early_exaggeration'],
            initialization=_start_layout(p['init']),
            metric=p['metric'],
            n_jobs=p['n_jobs'],
            neighbors=p['neighbors'],
            negative_gradient_method=gradient,
            ints_in_interval=p['ints_in_interval'],
            random_state=p['seed'])
        total = p['n_iter']
        normal_iter = total - EARLY_EXAGGERATION_ITER

        done = 0

        def report(iteration, error, embedding):
            nonlocal done
            done += CHECK_EVERY
            if progress is not None:
                progress(min(done, total), total, float(error))
            return False

        affinities, order, start = None, None, tsne.initialization
        if graph is not None:
            from openTSNE.affinity import Affinities, PerplexityBasedNN
            from openTSNE.nearest_neighbors import PrecomputedNeighbors

            k = self.graph_k(len(X))
            indices = graph['indices'][:, :k]
            distances = graph['distances'][:, :k]
            if len(X) >= LOCALITY_MIN_SAMPLES:
                # the optimisation runs in the graph's locality order and
                # its result is put back in the data's order at the end
                start = _initial_layout(p['init'], X, p['n_components'],
                                        p['seed'])
                order = locality_order(indices)
                X, indices, distances = _reorder(X, indices, distances,
                                                 order)
                if isinstance(start, np.ndarray):
                    start = start[order]
            # openTSNE takes int64 / float64 neighbours: one copy, made
            # from the (reordered) graph and dropped once P is built
            neighbors = PrecomputedNeighbors(
                np.asarray(indices, np.int64),
                np.asarray(distances, np.float64))
            del indices, distances
            built = PerplexityBasedNN(
                perplexity=used, metric=p['metric'], n_jobs=p['n_jobs'],
                random_state=p['seed'], knn_index=neighbors)
            del neighbors
            # The optimisation reads only P. The affinity object also keeps
            # its int64 / float64 copies of the neighbours (1.4 GB at a
            # million points) for adding points later, which the run does
            # from its own files (tsneviz.analysis.placement): keep P only.
            affinities = Affinities()
            affinities.P = built.P
            del built
        self.shared_graph_ = graph is not None
        embedding = tsne.prepare_initial(X, affinities=affinities,
                                         initialization=start)
        embedding = embedding.optimize(
            n_iter=EARLY_EXAGGERATION_ITER,
            exaggeration=p['early_exaggeration'],
            momentum=tsne.initial_momentum, callbacks=[report],
            callbacks_every_iters=CHECK_EVERY)
        callbacks = [report]
        if p['n_iter_without_progress'] > 0:
            callbacks.append(_KLConvergence(p['n_iter_without_progress'],
                                            p['kl_tol']))
        stopped_at, kl = None, None
        try:
            embedding = embedding.optimize(
                n_iter=normal_iter, momentum=tsne.final_momentum,
                callbacks=callbacks, callbacks_every_iters=CHECK_EVERY,
                propagate_exception=True)
        except openTSNE.tsne.OptimizationInterrupt as stop:
            # An interrupted embedding carries no KL; the interrupt does.
            embedding, stopped_at, kl = stop.final_embedding, done, stop.error
        self.n_iter_ = stopped_at if stopped_at is not None else total
        self.kl_divergence_ = float(embedding.kl_divergence if kl is None
                                    else kl)
        self.gradient_method_ = gradient
        if progress is not None:
            progress(total, total, self.kl_divergence_)
        self.embedding_ = np.asarray(embedding, dtype=np.float32)
        if order is not None:
            self.embedding_[order] = self.embedding_.copy()
        return self.embedding_


@TSNE_BACKENDS.register_module(name='sklearn')
class SklearnTSNE(BaseTSNE):
    """Barnes-Hut t-SNE from scikit-learn, for parity with mmpretrain.

    With ``init='random'``, ``learning_rate=200.0``, ``n_iter=1000`` and
    ``pca_dims=None`` it is the computation mmpretrain's tool asks for
    (``n_iter`` reaches scikit-learn as ``max_iter``, the name it has had
    since 1.5).

    Examples:
        >>> reducer = REDUCERS.build(dict(type='tsne', backend='sklearn',
        ...                                 n_iter=250))
        >>> reducer.fit_transform(np.random.rand(200, 16)).shape
        (200, 2)
    """

    name = 'SklearnTSNE'
    backend = 'sklearn'
    own_constraints = SKLEARN_ONLY
    defaults = dict(n_components=2, perplexity=30.0, early_exaggeration=12.0,
                    learning_rate='auto', n_iter=1000,
                    n_iter_without_progress=300, init='pca',
                    metric='euclidean', seed=0, n_jobs=-1, pca_dims=None,
                    method='barnes_hut', angle=0.5)

    def __init__(self, **params):
        super().__init__(**params)
        if self.params['init'] == 'spectral':
            raise UserError("SklearnTSNE: init='spectral' is only available "
                            "with the openTSNE backend; use 'pca' or 'random'")

    def fit_transform(self, X, progress=None):
        from sklearn.manifold import TSNE

        p = self.params
        X = self.reduce_dims(X)
        tsne = TSNE(
            n_components=p['n_components'], perplexity=p['perplexity'],
            early_exaggeration=p['early_exaggeration'],
            learning_rate=p['learning_rate'], max_iter=p['n_iter'],
            n_iter_without_progress=p['n_iter_without_progress'],
            init=p['init'], metric=p['metric'], method=p['method'],
            angle=p['angle'], n_jobs=p['n_jobs'], random_state=p['seed'])
        # scikit-learn has no callbacks: the bar can only show start and end.
        if progress is not None:
            progress(0, p['n_iter'], None)
        self.embedding_ = tsne.fit_transform(X).astype(np.float32)
        self.kl_divergence_ = float(tsne.kl_divergence_)
        self.n_iter_ = int(tsne.n_iter_)
        if progress is not None:
            progress(p['n_iter'], p['n_iter'], self.kl_divergence_)
        return self.embedding_


@REDUCERS.register_module(name='tsne')
class TSNE(BaseReducer):
    """``--method tsne``: one of :data:`~tsneviz.registry.TSNE_BACKENDS`.

    Building it returns the backend's reducer (:class:`OpenTSNE` or
    :class:`SklearnTSNE`, or any backend registered later), so ``backend``
    is a nested choice of the method rather than a method of its own.

    Args:
        backend (str): A key of ``TSNE_BACKENDS``, or ``'auto'``: a GPU
            backend when CUDA is available and one is installed, else
            openTSNE (:func:`auto_backend`); the
            reducer built records the backend really used. Defaults to
            ``'auto'``.
        **params: The backend's hyper-parameters.

    Examples:
        >>> type(REDUCERS.build(dict(type='tsne', backend='sklearn')))
        <class 'tsneviz.reduction.tsne.SklearnTSNE'>
    """

    name = 't-SNE'
    descriptions = dict(
        backend='t-SNE implementation: auto (a GPU backend when CUDA is '
        'available and one is installed: cuml, then tsnecuda, then '
        'torchdr; else opentsne), opentsne (FFT-accelerated), sklearn '
        "(Barnes-Hut, for parity with mmpretrain's tool), torchdr, cuml "
        'or tsnecuda (GPU).',
        **BaseTSNE.descriptions)

    def __new__(cls, backend: str = AUTO, **params):
        backends = registered(TSNE_BACKENDS)
        if backend == AUTO:
            return build_auto(**params)
        if backend not in backends:
            raise UserError(f'unknown t-SNE backend {backend!r}; choose one '
                            f'of {", ".join([AUTO, *backends])}')
        return backends[backend](**params)

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
    return gpu + ['opentsne']


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


def build_auto(**params) -> BaseTSNE:
    """Build the reducer of ``--backend auto`` for these parameters.

    The candidates of :func:`auto_candidates` are tried in order; one that
    refuses the parameters (``--n-components 3`` on cuML, say) is passed
    over with a warning, so ``auto`` never fails where openTSNE would run.
    The reducer's ``backend`` is the one really used, which run.json
    records.
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


def build_tsne(backend: str = AUTO, **params) -> BaseTSNE:
    """Build a t-SNE reducer from a ``--backend`` name and parameters.

    The same as ``build_reducer('tsne', backend=backend, **params)``.

    Args:
        backend (str): A key of ``TSNE_BACKENDS`` (``'opentsne'``,
            ``'sklearn'``, ``'torchdr'``, ``'cuml'``, ``'tsnecuda'``) or
            ``'auto'`` (:func:`auto_backend`).
            Defaults to ``'auto'``.
        **params: Hyper-parameters; a parameter left out takes the
            backend's default.

    Returns:
        BaseTSNE: The validated, unfitted reducer.

    Examples:
        >>> build_tsne('sklearn', perplexity=10.0).params['perplexity']
        10.0
    """
    return TSNE(backend=backend, **params)
