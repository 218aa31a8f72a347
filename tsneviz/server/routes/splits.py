"""``POST /api/runs/{run}/splits``: as ``tools/make_splits.py``."""
from fastapi import APIRouter

from tsneviz.rundir import SPLITS
from tsneviz.server import models as m
from tsneviz.server.context import ERRORS, ServerDep
from tsneviz.server.security import real_folder, relative_name

__all__ = ['router']

router = APIRouter(tags=['exports'])


@router.post('/api/runs/{run}/splits', response_model=m.Splits,
             responses=ERRORS)
def post_splits(run: str, body: m.SplitsIn, srv: ServerDep):
    """Stratified train/val split to ``RUN/splits`` (make_splits.py)."""
    from tsneviz.exporters.splits import make_splits

    r = srv.run(run)
    # make_splits records itself in run.json: read-modify-write
    with srv.run_lock(run):
        # a planted splits -> elsewhere link is refused (403)
        out_dir = real_folder(r.path, SPLITS)
        result = make_splits(r.path, body.val_ratio, by=body.by,
                             dup_threshold=body.dup_threshold,
                             seed=body.seed, out_dir=out_dir, key=body.key)
    strata = {str(k): v for k, v in result['strata'].items()}
    # the files by their names in the run, not by server path
    files = {name: relative_name(result[name], r.path)
             for name in ('train', 'val', 'duplicates')}
    return dict(result, run=run, strata=strata, **files)
