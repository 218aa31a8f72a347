"""``GET /api/runs/{run}/clusters``: the rows of ``clusters.csv``."""
from fastapi import APIRouter

from tsneviz.rundir import CLUSTERS
from tsneviz.server import models as m
from tsneviz.server.context import ERRORS, ServerDep
from tsneviz.server.errors import NotFound

__all__ = ['router']

router = APIRouter(tags=['runs'])


@router.get('/api/runs/{run}/clusters', response_model=m.Clusters,
            responses=ERRORS)
def clusters(run: str, srv: ServerDep):
    """Rows of ``clusters.csv`` (written by ``tools/cluster.py``)."""
    r = srv.run(run)
    table = r.clusters()
    if table is None:
        raise NotFound(f'run {run!r} is not clustered (no {CLUSTERS}): '
                       f'run tools/cluster.py {r.path} first')
    names = list(table)
    rows = [{k: (table[k][i] if table[k][i] != '' else None) for k in names}
            for i in range(len(table[names[0]]) if names else 0)]
    return dict(run=run, clusters=rows)
