"""Dataset cartography across checkpoints (Swayamdipta et al., 2020).

"Dataset Cartography: Mapping and Diagnosing Datasets with Training
Dynamics" (EMNLP 2020, arXiv:2009.10795) places each sample by two
statistics of the probability its model gives the TRUE class, taken over
the checkpoints of one training run:

- confidence: the mean of that probability;
- variability: its standard deviation (the paper's, over the epochs:
  ``ddof=0``).

and reads three regions off the map: easy-to-learn (high confidence, low
variability), ambiguous (high variability) and hard-to-learn (low
confidence, low variability; often mislabelled samples). The paper draws
the regions by eye and selects by rank; here every sample gets one region
by two fixed thresholds (:data:`CONFIDENCE_THRESHOLD`,
:data:`VARIABILITY_THRESHOLD`), recorded with the result, so that regions
of two comparisons mean the same.

The probability of the true class comes from the run's ``loss`` column:
the cross-entropy ``-log p(true)``, written only where the model's classes
match the dataset's (:mod:`tsneviz.labels`), so ``p = exp(-loss)``.
"""
from typing import Optional, Tuple

import numpy as np

from tsneviz.rundir import Run, atomic_write

#: From this variability on, a sample is ambiguous (the largest possible
#: standard deviation of probabilities is 0.5).
VARIABILITY_THRESHOLD = 0.2
#: Below the variability threshold: easy-to-learn from this mean confidence
#: on, hard-to-learn below it (the model is more often wrong than right).
CONFIDENCE_THRESHOLD = 0.5
#: The regions, in the order of the figure's legend.
REGIONS = ('easy-to-learn', 'ambiguous', 'hard-to-learn')
_REGION_COLORS = ('#1b9e77', '#7570b3', '#d95f02')


def true_class_confidence(run: Run, order: np.ndarray
                          ) -> Tuple[Optional[np.ndarray], Optional[str]]:
    """The probability of the true class per sample, from the loss.

    Args:
        run (Run): A run.
        order (np.ndarray): Row of the run of each reference sample.

    Returns:
        tuple: ``(confidence, why_not)``: (N,) probabilities in the
        reference order and None; or None and one line saying why the run
        has no usable head.
    """
    if not run.has_predictions:
        return None, 'no classification head (no predictions)'
    space = run.label_space
    if not space.matched:
        return None, ('its predictions are in the model\'s own classes, '
                      f'not the dataset\'s ({space.reason})')
    loss = run.table.get('loss')
    if loss is None or not np.isfinite(loss[order]).all():
        return None, 'no per-sample loss for every sample in samples.csv'
    return np.exp(-np.asarray(loss[order], dtype=np.float64)), None


def cartography(confidences: np.ndarray,
                confidence_threshold: float = CONFIDENCE_THRESHOLD,
                variability_threshold: float = VARIABILITY_THRESHOLD
                ) -> dict:
    """Confidence, variability and region of every sample.

    Args:
        confidences (np.ndarray): (T, N) probability of the true class at
            each of T checkpoints.
        confidence_threshold (float): Defaults to
            :data:`CONFIDENCE_THRESHOLD`.
        variability_threshold (float): Defaults to
            :data:`VARIABILITY_THRESHOLD`.

    Returns:
        dict: ``confidence`` and ``variability`` (N,) float64, ``region``
        (N,) of :data:`REGIONS`, ``counts`` per region and the thresholds.

    Examples:
        >>> out = cartography(np.array([[0.9, 0.1, 0.1], [0.95, 0.9, 0.2]]))
        >>> out['region'].tolist()
        ['easy-to-learn', 'ambiguous', 'hard-to-learn']
    """
    confidences = np.asarray(confidences, dtype=np.float64)
    confidence = confidences.mean(axis=0)
    variability = confidences.std(axis=0)
    region = np.where(
        variability >= variability_threshold, REGIONS[1],
        np.where(confidence >= confidence_threshold, REGIONS[0],
                 REGIONS[2])).astype(object)
    return dict(confidence=confidence, variability=variability,
                region=region,
                counts={r: int(np.sum(region == r)) for r in REGIONS},
                confidence_threshold=float(confidence_threshold),
                variability_threshold=float(variability_threshold))


def plot_cartography(carto: dict, title: str, out_path: str) -> int:
    """The data map: variability (x) against confidence (y), by region.

    Args:
        carto (dict): :func:`cartography`'s result.
        title (str): The figure's title.
        out_path (str): PNG to write (atomically).

    Returns:
        int: The number of points drawn.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 5.4), layout='constrained')
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    drawn = 0
    for name, color in zip(REGIONS, _REGION_COLORS):
        inside = carto['region'] == name
        drawn += int(inside.sum())
        ax.scatter(carto['variability'][inside], carto['confidence'][inside],
                   s=10, c=color, alpha=0.7, linewidths=0,
                   label=f'{name} ({int(inside.sum())})')
    ax.axvline(carto['variability_threshold'], color='0.6', lw=0.8,
               ls='--')
    ax.axhline(carto['confidence_threshold'], color='0.6', lw=0.8, ls='--',
               xmax=carto['variability_threshold'] / 0.5)
    ax.set_xlim(0, 0.5)
    ax.set_ylim(0, 1)
    ax.set_xlabel('variability (std of p(true class) across checkpoints)')
    ax.set_ylabel('confidence (mean p(true class))')
    ax.set_title(title, fontsize='medium')
    ax.legend(loc='lower right', frameon=False, fontsize='small')
    atomic_write(out_path, lambda f: fig.savefig(f, format='png', dpi=80))
    return drawn
