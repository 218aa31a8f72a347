"""``GET /api/runs/{run}/points``: coordinates and columns, paged."""
import math
from typing import Optional

from fastapi import APIRouter, Query

from tsneviz.errors import UserError
from tsneviz.server import models as m
from tsneviz.server.context import ERRORS, ServerDep
from tsneviz.server.errors import Unprocessable

__all__ = ['router']

router = APIRouter(tags=['runs'])


def _number(value) -> Optional[float]:
    # NaN (an empty cell) and infinities (an infinite loss) are not JSON:
    # they are sent as null
    return None if value is None or not math.isfinite(value) \
        else float(value)


def _class_name(name_of, label: Optional[int]) -> Optional[str]:
    # ground truth is named in the dataset's classes, predictions in the
    # model's (tsneviz.labels): the two lists differ for a pretrained head
    return None if label is None else name_of(label)


@router.get('/api/runs/{run}/points', response_model=m.Points,
            responses=ERRORS)
def points(run: str, srv: ServerDep, offset: int = Query(0, ge=0),
           limit: int = Query(1000, ge=1, le=m.MAX_PAGE),
           key: Optional[str] = Query(None, description='feature key; '
                                      'default the run\'s first')):
    """Coordinates and per-sample columns, one page of rows."""
    r = srv.run(run)
    try:
        key = r.key(key)
    except UserError as err:
        raise Unprocessable(str(err)) from None
    coords = r.coords(key)
    stop = min(offset + limit, len(r))
    t = r.table
    space = r.label_space
    rows = []
    for p in range(offset, stop):
        def num(col):
            return _number(t[col][p]) if col in t else None

        def integer(col):
            v = num(col)
            return None if v is None else int(v)

        rows.append(dict(
            position=p, index=int(float(t['index'][p])),
            img_path=str(t['img_path'][p]),
            gt_label=int(float(t['gt_label'][p])),
            gt_class=_class_name(space.dataset_name, integer('gt_label')),
            pred_label=integer('pred_label'),
            pred_class=_class_name(space.model_name, integer('pred_label')),
            score=num('score'), entropy=num('entropy'), loss=num('loss'),
            cluster=integer('cluster'),
            x=float(coords[p, 0]), y=float(coords[p, 1]),
            z=float(coords[p, 2]) if coords.shape[1] > 2 else None))
    return dict(run=run, key=key, total=len(r), offset=offset, limit=limit,
                points=srv.public_samples(r, rows))
