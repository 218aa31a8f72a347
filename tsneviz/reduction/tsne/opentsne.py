"""The openTSNE backend (FFT-accelerated), which also places new points
on any t-SNE map."""

import numpy as np
from mmengine.logging import MMLogger

from tsneviz.errors import UserError
from tsneviz.registry import TSNE_BACKENDS

from ..base import pca_projection
from .base import CHECK_EVERY, EARLY_EXAGGERATION_ITER, OPENTSNE_ONLY, TSNE
from .locality import LOCALITY_MIN_SAMPLES, _reorder, locality_order

# From this many points 'auto' uses openTSNE's FFT gradient, below it
# Barnes-Hut (openTSNE itself switches at 10,000; measured in
# benchmarks/README.md, ``## bench_tsne.py``).
FFT_MIN_SAMPLES = 5000
# openTSNE finds int(3 x perplexity) neighbours per point: below 1/3 that is
# none, and its kNN search fails.
OPENTSNE_MIN_PERPLEXITY = 1 / 3
# New points are started at the median of this many nearest map samples
# and optimised with this perplexity (at most (k - 1) / 3): openTSNE's
# ``transform`` defaults.
PLACE_K = 25
PLACE_PERPLEXITY = 5.0


class _KLConvergence:
    """openTSNE callback that stops the normal phase when KL stalls.

    scikit-learn aborts after ``n_iter_without_progress`` iterations without
    a lower KL divergence. openTSNE has no such rule, so the same check runs
    here as a callback. A gain below ``kl_tol`` (relative) does not count as
    progress: KL keeps creeping down long after the picture has stopped
    changing (what that tolerance costs: benchmarks/README.md).
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
class OpenTSNE(TSNE):
    """FFT-accelerated t-SNE from openTSNE (Poličar et al., 2024).

    The defaults differ from mmpretrain's tool where the t-SNE literature
    says so: PCA initialisation keeps the global layout and makes runs
    reproducible, and ``learning_rate='auto'`` (N / early exaggeration,
    Belkina et al. 2019) avoids the poor convergence of a fixed 200 at large
    N. The speed defaults (``pca_dims=50``, ``kl_tol=0.01`` with
    ``n_iter_without_progress=50``, ``n_iter=750``, the gradient method
    from :data:`FFT_MIN_SAMPLES` points, ``n_jobs=-1`` and
    ``ints_in_interval=2``, openTSNE's being 1) were measured with
    ``benchmarks/bench_tsne.py``: see benchmarks/README.md, ``##
    bench_tsne.py``.

    Its :meth:`transform` places new points on the fitted map, and on the
    map of any t-SNE backend (:meth:`TSNE.from_map`).

    Examples:
        >>> from tsneviz.registry import REDUCERS
        >>> reducer = REDUCERS.build(dict(type='tsne', backend='opentsne',
        ...                               perplexity=20.0))
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

    def perplexity_for(self, n_samples: int) -> float:
        """The perplexity openTSNE really uses for ``n_samples`` samples.

        openTSNE silently lowers a perplexity above (N - 1) / 3 to that
        value; tsneviz lowers it itself, says so in the log, and records
        the value used (``perplexity_``: the plot title, run.json) along
        with the one asked for (``perplexity_requested`` in the results).
        """
        return min(float(self.params['perplexity']), (n_samples - 1) / 3)

    def gradient_method(self, n_samples: int) -> str:
        """The negative gradient a map of ``n_samples`` points is made with.

        ``'auto'`` is FFT from :data:`FFT_MIN_SAMPLES` points, else
        Barnes-Hut; a 3-D map always uses Barnes-Hut (openTSNE's FFT
        interpolation exists only up to 2-D).
        """
        gradient = self.params['negative_gradient_method']
        if self.params['n_components'] > 2:
            return 'bh'
        if gradient == 'auto':
            return 'fft' if n_samples >= FFT_MIN_SAMPLES else 'bh'
        return gradient

    def _fit(self, X, graph, progress):
        import openTSNE

        p = self.params
        X, graph = self.search_points(X, graph)
        used = self.perplexity_
        if used != p['perplexity']:
            MMLogger.get_current_instance().warning(
                'perplexity %g is above what openTSNE uses for %d samples '
                '((N - 1) / 3); using %g', p['perplexity'], len(X), used)
        gradient = self.gradient_method(len(X))
        tsne = openTSNE.TSNE(
            n_components=p['n_components'],
            perplexity=used,
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

            k = self.n_neighbors_for(len(X))
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
            # million points) for adding points later, which transform
            # does from the features instead: keep P only.
            affinities = Affinities()
            affinities.P = built.P
            del built
        self.used_graph_ = graph is not None
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
        coords = np.asarray(embedding, dtype=np.float32)
        if order is not None:
            coords[order] = coords.copy()
        return coords

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Place new rows on the fitted map, which stays as it is.

        openTSNE's ``TSNEEmbedding.transform`` on the map and the affinities
        of its features, in the space the fit searched (its PCA, metric,
        perplexity, gradient method, FFT grid and seed): new points are
        optimised against the fixed reference points (Poličar et al.,
        2024).

        Args:
            X (np.ndarray): (M, C) features of the map's width.

        Returns:
            np.ndarray: (M, n_components) float32, in the map's frame.
        """
        from openTSNE import TSNEEmbedding
        from openTSNE.affinity import PerplexityBasedNN

        features, coords = self._fitted_map()
        p = self.params
        n = len(features)
        space, project = pca_projection(features, p['pca_dims'], p['seed'])
        affinities = PerplexityBasedNN(
            space, perplexity=self.perplexity_, metric=p['metric'],
            method=p['neighbors'], n_jobs=p['n_jobs'],
            random_state=p['seed'])
        # a copy: transform() centres the reference embedding in place
        # before adding the new points; that shift is undone below, so
        # they land in the map's frame
        coords = np.array(coords, dtype=np.float64)
        centre = (coords.max(axis=0) + coords.min(axis=0)) / 2
        embedding = TSNEEmbedding(
            coords, affinities,
            negative_gradient_method=self.gradient_method(n),
            ints_in_interval=p['ints_in_interval'], random_state=p['seed'])
        k = min(PLACE_K, n)
        placed = embedding.transform(
            project(X), k=k, perplexity=min(PLACE_PERPLEXITY, (k - 1) / 3))
        return (np.asarray(placed, np.float64) + centre).astype(np.float32)
