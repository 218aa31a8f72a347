"""t-SNE: ``--method tsne`` and its backends.

One module per concept:

* :mod:`.base`: :class:`TSNE`, the method and the class of every backend
  (shared parameters, checks, the run's record, placing new points);
* :mod:`.opentsne`: openTSNE (FFT-accelerated; the default without a GPU);
* :mod:`.sklearn`: scikit-learn (Barnes-Hut, parity with mmpretrain);
* :mod:`.auto`: ``--backend auto`` and :func:`build_tsne`;
* :mod:`.locality`: the locality order of large fits.

The GPU backends are in :mod:`tsneviz.reduction.gpu`.
"""
from .auto import (
    AUTO,
    GPU_PREFERENCE,
    auto_backend,
    auto_candidates,
    build_auto,
    build_tsne,
    choose_backend,
)
from .base import (
    BACKEND_ONLY,
    CHECK_EVERY,
    COMMON_CONSTRAINTS,
    EARLY_EXAGGERATION_ITER,
    MIN_SAMPLES,
    OPENTSNE_ONLY,
    PLACING_BACKEND,
    SKLEARN_ONLY,
    TSNE,
    backend_only_keys,
    suggested_perplexity,
)

# _reorder: for benchmarks/bench_locality.py
from .locality import (
    LOCALITY_MIN_SAMPLES,
    _reorder,  # noqa: F401
    locality_order,
)
from .opentsne import FFT_MIN_SAMPLES, OPENTSNE_MIN_PERPLEXITY, OpenTSNE
from .sklearn import SklearnTSNE

#: The name of :class:`TSNE` as the backends' base class.
BaseTSNE = TSNE

__all__ = [
    'AUTO', 'BACKEND_ONLY', 'BaseTSNE', 'CHECK_EVERY', 'COMMON_CONSTRAINTS',
    'EARLY_EXAGGERATION_ITER', 'FFT_MIN_SAMPLES', 'GPU_PREFERENCE',
    'LOCALITY_MIN_SAMPLES', 'MIN_SAMPLES', 'OPENTSNE_MIN_PERPLEXITY',
    'OPENTSNE_ONLY', 'OpenTSNE', 'PLACING_BACKEND', 'SKLEARN_ONLY',
    'SklearnTSNE', 'TSNE', 'auto_backend', 'auto_candidates', 'build_auto',
    'build_tsne', 'backend_only_keys', 'choose_backend', 'locality_order',
    'suggested_perplexity'
]
