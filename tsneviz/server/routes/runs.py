"""``GET /api/runs``: the runs served, and those that cannot be read."""
import logging

from fastapi import APIRouter

from tsneviz.server import models as m
from tsneviz.server.context import ERRORS, ServerDep, message
from tsneviz.server.errors import BrokenRun
from tsneviz.server.runs import UnknownRun

__all__ = ['router']

log = logging.getLogger('tsneviz.server')
router = APIRouter(tags=['runs'])


@router.get('/api/runs', response_model=m.RunList, responses=ERRORS)
def list_runs(srv: ServerDep):
    """Complete runs (``run.json`` present) under the server root.

    A run whose files cannot be read is listed under ``broken`` with
    the reason; it does not stop the others from being listed.
    """
    items, broken = [], []
    for run_id in srv.runs.ids():
        try:
            items.append(srv.summary(run_id))
        except UnknownRun:
            continue  # removed since the scan
        except BrokenRun as err:
            log.warning('%s', err)
            broken.append(m.BrokenRun(id=run_id,
                                      error=srv.scrub(message(err))))
        except Exception as err:  # noqa: BLE001 one run, not the list
            log.exception('run %s cannot be listed', run_id)
            broken.append(m.BrokenRun(id=run_id, error=srv.scrub(
                f'{type(err).__name__}: {message(err)}')))
    return m.RunList(runs=items, broken=broken)
