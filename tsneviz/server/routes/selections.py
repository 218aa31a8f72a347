"""``/api/runs/{run}/selections``: save, list, read and delete selections.

The files and their limits are :mod:`tsneviz.server.selections`'.
"""
from fastapi import APIRouter, Query
from fastapi.responses import Response

from tsneviz.errors import UserError
from tsneviz.server import models as m
from tsneviz.server import selections as sel
from tsneviz.server.context import ERRORS, ServerDep
from tsneviz.server.errors import Conflict, Forbidden, Unprocessable

__all__ = ['router']

router = APIRouter(tags=['selections'])


@router.get('/api/runs/{run}/selections', response_model=m.Selections,
            responses=ERRORS)
def get_selections(run: str, srv: ServerDep, offset: int = Query(0, ge=0),
                   limit: int = Query(100, ge=1, le=m.MAX_SELECTION_PAGE)):
    """One page of the run's saved selections, oldest first.

    Each is a summary (``n_indices``); ``GET .../selections/{id}``
    has its indices.
    """
    total, page = sel.list_selections(srv.run(run), offset, limit)
    return dict(run=run, total=total, offset=offset, limit=limit,
                selections=page)


@router.get('/api/runs/{run}/selections/{selection_id}',
            response_model=m.Selection, responses=ERRORS)
def get_selection(run: str, selection_id: str, srv: ServerDep):
    """A saved selection with its indices."""
    return sel.get_selection(srv.run(run), selection_id)


@router.delete('/api/runs/{run}/selections/{selection_id}', status_code=204,
               responses=ERRORS)
def delete_selection(run: str, selection_id: str, srv: ServerDep):
    """Remove a saved selection (both its files)."""
    sel.delete_selection(srv.run(run), selection_id)
    return Response(status_code=204)


@router.post('/api/runs/{run}/selections', response_model=m.Selection,
             status_code=201, responses=ERRORS)
def post_selection(run: str, body: m.SelectionIn, srv: ServerDep):
    """Save a selection as ``RUN/selections/<id>.csv`` and ``.json``.

    A run holds a bounded number (and size) of selections: 409 beyond.
    """
    r = srv.run(run)
    limits = srv.settings
    # one save at a time per run, so the count limit holds
    with srv.run_lock(f'{run}\0selections'):
        try:
            return sel.save_selection(
                r, body.name, body.indices, body.label, body.note,
                max_count=limits.max_selections,
                max_bytes=limits.max_selection_bytes)
        except (Forbidden, Conflict):
            raise
        except UserError as err:
            raise Unprocessable(str(err)) from None
