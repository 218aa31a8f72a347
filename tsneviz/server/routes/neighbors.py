"""``GET /api/runs/{run}/neighbors/{index}``: nearest in feature space."""
from typing import Optional

from fastapi import APIRouter, Path, Query

from tsneviz.errors import UserError
from tsneviz.server import models as m
from tsneviz.server.context import ERRORS, ServerDep
from tsneviz.server.errors import Unprocessable

__all__ = ['router']

router = APIRouter(tags=['runs'])


@router.get('/api/runs/{run}/neighbors/{index}', response_model=m.Neighbors,
            responses=ERRORS)
def neighbors(run: str, srv: ServerDep,
              index: int = Path(description='sample POSITION (row of '
                                'samples.csv)'),
              k: int = Query(9, ge=1), key: Optional[str] = None):
    """The k nearest samples in feature space (the sample excluded)."""
    from tsneviz.analysis.neighbors import query

    r = srv.run(run)
    srv.position(r, index)
    if k > len(r) - 1:
        raise Unprocessable(f'k {k} is larger than the {len(r) - 1} '
                            'other samples of the run; pass a smaller k')
    try:
        key = r.key(key)
    except UserError as err:
        raise Unprocessable(str(err)) from None
    # query's index is a POSITION, as here
    found = query(r.path, index=index, k=k, key=key)
    return dict(run=run, position=index, k=k,
                neighbors=srv.public_samples(r, found))
