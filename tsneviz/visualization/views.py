"""Views: what the colour of each point shows.

:data:`VIEWS` colour by ground truth, prediction, correct vs misclassified,
cluster or loss; :func:`view_style` gives the per-point colours, sizes and
draw order of one view, and :func:`default_views` the views drawn when
none are asked for.
"""
import numpy as np
from matplotlib.colors import to_rgba

from .figure import _auto_point_size
from .palette import class_palette

#: Every view: ground truth, prediction, correct vs misclassified, cluster
#: id, per-sample loss.
VIEWS = ('label', 'prediction', 'errors', 'cluster', 'loss')

#: Views that need the model's predictions (a run with logits).
PREDICTION_VIEWS = ('prediction', 'errors', 'loss')

#: Correct samples in the errors view, and HDBSCAN noise in the cluster
#: view: light enough to recede behind what is highlighted.
BACKGROUND = (0.78, 0.78, 0.78, 1.0)
#: Misclassified samples in the errors view (matplotlib's tab:red).
HIGHLIGHT = tuple(float(v) for v in to_rgba('tab:red'))
#: Colormap of the loss view: reversed so that high loss is dark and stands
#: out on the white background, while near-zero loss is a light yellow.
LOSS_CMAP = 'viridis_r'
# Background points are drawn at this share of the normal marker area.
_SMALL = 0.5

_TITLES = {'label': 'ground truth', 'prediction': 'prediction',
           'errors': 'misclassified', 'cluster': 'cluster',
           'loss': 'loss'}


class ViewStyle:
    """Per-point colours and sizes of one view, and its legend or colorbar.

    Attributes:
        colors (np.ndarray): (N, 4) RGBA of each sample, in sample order.
        sizes (np.ndarray): (N,) marker areas in points^2.
        order (np.ndarray): Draw order (later points are on top).
        legend (list[tuple]): ``(name, rgba)`` entries; empty for the loss
            view.
        legend_title (str | None): Title of the legend.
        norm (matplotlib.colors.Normalize | None): Loss view only: the
            mapping of loss to the colormap, for the colorbar.
        highlighted (np.ndarray): (N,) bool, the samples the view singles
            out (misclassified in the errors view; none elsewhere).
    """

    def __init__(self, colors, sizes, order, legend, legend_title=None,
                 norm=None, highlighted=None):
        self.colors = np.asarray(colors, dtype=float)
        self.sizes = np.asarray(sizes, dtype=float)
        self.order = np.asarray(order)
        self.legend = legend
        self.legend_title = legend_title
        self.norm = norm
        self.highlighted = (np.zeros(len(self.colors), bool)
                            if highlighted is None else highlighted)


def _column(table, name, view, hint):
    if name not in table:
        raise _user_error(f'the {view} view needs the {name!r} column, '
                          f'which this run does not have: {hint}')
    return np.asarray(table[name])


def _user_error(message):
    # Imported here so that plotting alone never needs the CLI's error type.
    from tsneviz.errors import UserError
    return UserError(message)


_NO_PREDICTIONS = ('the run has no predictions (no classification head or '
                   'logits), so there is no prediction, errors or loss view')

_OTHER_SPACE = ('the model\'s classes are not the dataset\'s (see '
                'label_space in run.json), so predictions cannot be marked '
                'right or wrong; the prediction view shows them')


def _loss_share(loss):
    """Loss scaled to [0, 1] by the largest loss (NaN counts as 0).

    Linear, so the marker area is proportional to the loss: the few
    samples that cost the most are the big ones, not half the plot.
    """
    loss = np.nan_to_num(np.asarray(loss, dtype=float), nan=0.0)
    top = loss.max() if len(loss) else 0.0
    return np.clip(loss / top, 0, 1) if top > 0 else np.zeros_like(loss)


def _loss_norm(loss):
    """Log-scaled norm of the loss colormap.

    Cross-entropy of a trained model spans orders of magnitude (1e-4 for
    easy samples, several for the confidently wrong ones); on a linear
    scale all but a handful of points would share the lightest colour.
    """
    from matplotlib.colors import LogNorm, Normalize
    finite = loss[np.isfinite(loss)]
    positive = finite[finite > 0]
    if len(positive) == 0 or positive.max() <= positive.min():
        return Normalize(vmin=0.0, vmax=max(float(finite.max(initial=0)),
                                            1e-12))
    return LogNorm(vmin=float(positive.min()), vmax=float(positive.max()),
                   clip=True)


def view_style(table, view, label_space=None, size_by_loss=False,
               point_size=None):
    """Colours, sizes and draw order of the points of one view.

    ``label`` and ``prediction`` colour by class (the same colour for a
    class in both, as in :func:`plot_embedding`); ``errors`` draws correct
    samples small and grey and misclassified ones large and red on top;
    ``cluster`` colours by cluster id with HDBSCAN noise (``-1``) small and
    grey; ``loss`` maps the per-sample loss to a log-scaled colormap with
    the highest losses on top.

    Args:
        table (dict): Per-sample columns as in ``samples.csv``
            (``Run.table``): ``gt_label``; ``pred_label`` and ``loss`` for
            the prediction views; ``cluster`` for the cluster view.
        view (str): One of :data:`VIEWS`.
        label_space (LabelSpace, optional): Class names of the dataset and
            the model, and whether predictions compare with the truth
            (``Run.label_space``); None takes names from
            ``gt_class``/``pred_class`` and compares ids as they are.
            Defaults to None.
        size_by_loss (bool): Marker area grows with the loss (the errors
            view then keeps correct samples small and scales the
            misclassified ones). Defaults to False.
        point_size (float, optional): Normal marker area; None picks one
            from N. Defaults to None.

    Returns:
        ViewStyle: Per-point colours and sizes and the legend entries.

    Raises:
        UserError: If the table lacks what the view shows, e.g. the errors
            view of a run without predictions or with predictions in
            another label space.
        ValueError: For an unknown view.

    Examples:
        >>> style = view_style(dict(gt_label=[0, 1, 1], pred_label=[0, 0, 1],
        ...                         loss=[0.1, 2.0, 0.2]), 'errors')
        >>> style.highlighted.tolist()
        [False, True, False]
    """
    from tsneviz.labels import LabelSpace

    if view not in VIEWS:
        raise ValueError(f'unknown view {view!r}; choose from '
                         f'{", ".join(VIEWS)}')
    space = label_space or LabelSpace.assumed(None, table)
    gt = np.asarray(table['gt_label']).astype(np.int64)
    n = len(gt)
    if view in PREDICTION_VIEWS and 'pred_label' not in table:
        raise _user_error(_NO_PREDICTIONS)
    base = _auto_point_size(n) if point_size is None else float(point_size)
    loss = None
    if size_by_loss or view == 'loss':
        if 'loss' not in table:
            raise _user_error('size by loss needs per-sample loss: '
                              + _NO_PREDICTIONS)
        loss = np.asarray(table['loss'], dtype=float)
    share = _loss_share(loss) if size_by_loss else None
    sizes = (np.full(n, base) if share is None
             else base * (_SMALL + 3.5 * share))
    # A fixed shuffle so no group is always on top (see
    # embedding._draw).
    shuffled = np.random.default_rng(0).permutation(n)

    if view in ('label', 'prediction'):
        # Colours are ranked over the ground-truth classes present, as in
        # plot_embedding, so label view, prediction view and feat_<key>.png
        # agree (a prediction is coloured as the class it names, in the
        # model's space); a class only ever predicted gets a colour after
        # those.
        classes = [int(c) for c in np.unique(gt)]
        shown, name_of = gt, space.dataset_name
        if view == 'prediction':
            shown = np.asarray(table['pred_label']).astype(np.int64)
            name_of = space.model_name
            classes = [int(c) for c in space.to_model(classes)] \
                if space.matched else []
            classes += sorted(set(np.unique(shown).tolist()) - set(classes))
        palette = class_palette(len(classes))
        rank = {c: i for i, c in enumerate(classes)}
        colors = np.array([palette[rank[int(y)]] for y in shown])
        present = [c for c in classes if c in set(shown.tolist())]
        legend = [(name_of(c), palette[rank[c]]) for c in present]
        return ViewStyle(colors, sizes, shuffled, legend,
                         'predicted' if view == 'prediction' else None)

    if view == 'errors':
        correct = space.correct(gt, np.asarray(table['pred_label']))
        if correct is None:
            raise _user_error(_OTHER_SPACE)
        wrong = ~correct
        colors = np.where(wrong[:, None], HIGHLIGHT, BACKGROUND)
        if share is None:
            sizes = np.where(wrong, 2.0 * base, _SMALL * base)
        else:
            # Even the least costly error stays bigger than any correct one.
            sizes = np.where(wrong, base * (1.5 + 3.0 * share),
                             _SMALL * base)
        # Correct ones first, then the errors by rising loss: the worst
        # mistakes end on top.
        key = (np.nan_to_num(np.asarray(table['loss'], dtype=float),
                             nan=0.0) if 'loss' in table else np.zeros(n))
        order = np.concatenate([shuffled[~wrong[shuffled]],
                                np.flatnonzero(wrong)[
                                    np.argsort(key[wrong], kind='stable')]])
        legend = [(f'correct ({int((~wrong).sum())})', BACKGROUND),
                  (f'misclassified ({int(wrong.sum())})', HIGHLIGHT)]
        return ViewStyle(colors, sizes, order, legend, highlighted=wrong)

    if view == 'cluster':
        ids = _column(table, 'cluster', view,
                      'run tools/cluster.py on it first').astype(np.int64)
        clusters = [c for c in np.unique(ids) if c != -1]
        palette = class_palette(len(clusters))
        rank = {c: i for i, c in enumerate(clusters)}
        noise = ids == -1
        colors = np.array([BACKGROUND if c == -1 else palette[rank[c]]
                           for c in ids])
        sizes = np.where(noise, _SMALL * base, sizes)
        order = np.concatenate([shuffled[noise[shuffled]],
                                shuffled[~noise[shuffled]]])
        legend = [(str(c), palette[rank[c]]) for c in clusters]
        if noise.any():
            legend.append((f'noise ({int(noise.sum())})', BACKGROUND))
        return ViewStyle(colors, sizes, order, legend, 'cluster')

    # view == 'loss'
    from matplotlib import colormaps as cmaps
    norm = _loss_norm(loss)
    colors = cmaps[LOSS_CMAP](norm(np.nan_to_num(loss, nan=0.0)))
    order = np.argsort(np.nan_to_num(loss, nan=-np.inf), kind='stable')
    return ViewStyle(colors, sizes, order, [], norm=norm)


def default_views(has_predictions, matched=True):
    """The views :func:`render_views` draws when none are asked for.

    Ground truth, plus what the model gets wrong when the run has
    predictions of the dataset's classes, or the predictions themselves
    when they are of other classes.
    """
    if not has_predictions:
        return ('label',)
    return ('label', 'errors') if matched else ('label', 'prediction')
