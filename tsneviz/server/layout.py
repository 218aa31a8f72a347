"""The ``tsne`` block of a job body, built from the reducers' declarations.

The reducers declare which layout parameters exist, what each accepts
(constraint tables of :mod:`tsneviz.params`) and which are command-line
flags of ``tools/vis_tsne.py``; :func:`tsneviz.reduction.fields.layout_fields`
reads those declarations. This module turns the t-SNE flags into the
pydantic model :class:`TsneIn`, so that a job is refused at submission
(422, naming the field) with the reducer's own bounds rather than later in
its process, and the server keeps no copy of the list or of the bounds.

On top, the server adds its own caps (:data:`SERVER_CAPS`): a job shares
the machine, so it may not ask for more threads or work than these. A few
parameters are never offered (:data:`NOT_OFFERED`), should a reducer ever
make them flags.

Examples:
    >>> TsneIn(perplexity=20.0, backend='sklearn').perplexity
    20.0
    >>> TsneIn(early_exaggeration=0.5)  # the reducer's bound: >= 1
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for \
TsneIn
"""
import numbers
from typing import (
    Annotated,
    Any,
    Dict,
    List,
    Literal,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from pydantic import BaseModel, ConfigDict, Field, create_model

from tsneviz.params import Interval, Options
from tsneviz.reduction.fields import LayoutField, layout_fields

__all__ = ['MAX_THREADS', 'MAX_PCA_DIMS', 'MAX_ITER', 'MAX_PERPLEXITY',
           'SERVER_CAPS', 'NOT_OFFERED', 'offered_fields', 'tsne_model',
           'TsneIn']

#: Most t-SNE threads (``tsne.n_jobs``) of a job.
MAX_THREADS = 8
#: Most PCA dimensions before t-SNE.
MAX_PCA_DIMS = 1024
#: Most t-SNE iterations.
MAX_ITER = 10_000
#: Largest perplexity: the kNN graph holds 3 x perplexity neighbours a point.
MAX_PERPLEXITY = 10_000

#: Bounds the server sets on top of the reducers' (pydantic ``ge``/``le``);
#: the tighter of the two applies.
SERVER_CAPS: Dict[str, Dict[str, float]] = {
    'perplexity': dict(le=MAX_PERPLEXITY),
    'n_iter': dict(le=MAX_ITER),
    # -1 (never stop early) is bounded by n_iter anyway, but 0 is refused
    # by the reducer outside its table: refuse both here, at submission
    'n_iter_without_progress': dict(ge=1, le=MAX_ITER),
    # -1 means every core: a job gets a bounded number of threads
    'n_jobs': dict(ge=1, le=MAX_THREADS),
    'pca_dims': dict(le=MAX_PCA_DIMS),
}

_WORDS = dict(ge='at least', le='at most')

#: Layout parameters a job may not set, with the reason.
NOT_OFFERED: Dict[str, str] = {
    'seed': 'the job\'s own seed field seeds sampling and layout',
    # scikit-learn's exact method keeps an N x N matrix: 80 GB at the
    # 100 000 samples a job may ask for
    'method': 'exact t-SNE needs memory quadratic in the samples',
    # openTSNE's FFT grid has (span / ints_in_interval)^2 cells
    'ints_in_interval': 'a fine FFT grid needs unbounded memory',
}


def offered_fields() -> List[LayoutField]:
    """The t-SNE parameters a job may set: the flags, as the reducers say.

    Both backends' flags are listed (a parameter that a backend does not
    use is dropped with a warning by that reducer), ``backend`` too.

    Returns:
        list[LayoutField]: In the reducers' declaration order.

    Examples:
        >>> [f.name for f in offered_fields()][:3]
        ['backend', 'n_components', 'perplexity']
    """
    return [f for f in layout_fields('tsne')
            if f.is_flag and f.name not in NOT_OFFERED]


def _bounds(interval: Interval, cap: Dict[str, float]) -> Dict[str, float]:
    """pydantic bounds of an interval, tightened by a server cap."""
    low, open_low = interval.low, interval.open_low
    if 'ge' in cap and (low is None or cap['ge'] > low):
        low, open_low = cap['ge'], False
    high = interval.high
    if 'le' in cap and (high is None or cap['le'] < high):
        high = cap['le']
    out = {}
    if low is not None:
        out['gt' if open_low else 'ge'] = low
    if high is not None:
        out['le'] = high
    return out


def _field_type(name: str, row: Sequence[Any]):
    """The pydantic type of one constraints row (None if none fits JSON)."""
    cap = SERVER_CAPS.get(name, {})
    kinds = []
    for c in row:
        if isinstance(c, Options):
            kinds.append(Literal[tuple(c.values)])
        elif isinstance(c, Interval):
            base = int if issubclass(c.kind, numbers.Integral) else float
            kinds.append(Annotated[base, Field(**_bounds(c, cap))])
        # None is allowed anyway (every field is optional), and an array
        # (a start layout) cannot come in JSON
    if not kinds:
        return None
    return kinds[0] if len(kinds) == 1 else Union[tuple(kinds)]


def tsne_model(fields: Optional[Sequence[LayoutField]] = None) -> type:
    """Build the pydantic model of a job's ``tsne`` block.

    Args:
        fields (list[LayoutField], optional): The parameters. Defaults to
            :func:`offered_fields`.

    Returns:
        type: A pydantic model named ``TsneIn``: every parameter optional
        (None keeps the config's value), with the reducers' bounds
        tightened by :data:`SERVER_CAPS`; unknown fields are refused.

    Examples:
        >>> from tsneviz.reduction.fields import field
        >>> Model = tsne_model([field('angle')])
        >>> Model(angle=0.5).angle
        0.5
    """
    if fields is None:
        fields = offered_fields()
    model_fields: Dict[str, Tuple[Any, Any]] = {}
    for f in fields:
        kind = _field_type(f.name, f.constraints)
        if kind is None:
            continue
        text = f.help().rstrip('.') + '.' if f.description else ''
        if f.name in SERVER_CAPS:
            text += ' Over the API: ' + ', '.join(
                f'{_WORDS[k]} {v:g}' for k, v in SERVER_CAPS[f.name].items())
        model_fields[f.name] = (Optional[kind], Field(
            None, description=text.strip() or None))
    return create_model('TsneIn', __base__=_TsneBase,
                        __doc__=_TsneBase.__doc__, **model_fields)


class _TsneBase(BaseModel):
    """t-SNE flags of tools/vis_tsne.py; None keeps the config's value.

    The parameters and their bounds are the reducers' (tsneviz.reduction),
    with the server's caps on top.
    """
    # An unknown field is a typo the client should hear about.
    model_config = ConfigDict(extra='forbid')


#: The ``tsne`` block of :class:`~tsneviz.server.models.JobIn`.
TsneIn = tsne_model()
