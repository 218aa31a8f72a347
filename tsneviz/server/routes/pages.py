"""The explorer pages: ``/`` lists the runs, ``/runs/{run}/`` shows one.

Below ``/runs/{run}/`` the run directory's files (thumbnails, plots) are
served by relative path; hidden names and anything outside the run are
refused, and ``run.json`` is served with its paths as names. None of these
routes is in the OpenAPI spec: they are pages, not API.

The explorer page is the one page of a run whose scripts run, and
:data:`~tsneviz.server.security.EXPLORER_POLICY` lets them only show the
run (no request of their own); every run file is served sandboxed
(:class:`~tsneviz.server.security.SecurityHeaders`).
"""
import html
import os.path as osp

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from tsneviz.errors import UserError
from tsneviz.rundir import (
    EXPLORER_DATA,
    MANIFEST,
    MAX_FILE_BYTES,
    THUMBS,
    UnsafeFile,
    read_regular,
    recorded_step,
)
from tsneviz.server.context import EXPLORER, ServerDep, ServerState
from tsneviz.server.errors import Forbidden, NotFound
from tsneviz.server.files import serve_file
from tsneviz.server.security import EXPLORER_POLICY, real_folder

__all__ = ['router']

router = APIRouter(include_in_schema=False)


@router.get('/', response_class=HTMLResponse)
def home(srv: ServerDep):
    items = ''.join(
        f'<li><a href="/runs/{html.escape(i)}/">{html.escape(i)}</a>'
        f'{_state(srv, i)}</li>' for i in srv.runs.ids())
    return (f'<!doctype html><meta charset="utf-8"><title>tsneviz runs'
            f'</title><h1>tsneviz runs</h1><ul>{items or "none"}</ul>'
            '<p><a href="/docs">API</a></p>')


@router.get('/runs/{run}')
def page_redirect(run: str, request: Request, srv: ServerDep):
    srv.runs.path(run)
    # the page's asset paths are relative: they need the trailing /
    query = f'?{request.url.query}' if request.url.query else ''
    return RedirectResponse(f'/runs/{run}/{query}', 307)


@router.get('/runs/{run}/')
def page(run: str, srv: ServerDep):
    folder = srv.runs.path(run)
    path = osp.join(folder, EXPLORER)
    if not osp.isfile(path):
        with srv.run_lock(run):
            if not osp.isfile(path):
                _write_explorer(folder)
    try:
        text = read_regular(path, MAX_FILE_BYTES, folder).decode('utf-8')
    except UnsafeFile as err:
        raise Forbidden(f'the page is not served: {err}') from None
    except UnicodeDecodeError:
        raise Forbidden(f'{EXPLORER} is not UTF-8 text: write the explorer '
                        'again (tools/explore.py)') from None
    return HTMLResponse(_served_page(text, run),
                        headers={'Cache-Control': 'no-cache',
                                 'Content-Security-Policy': EXPLORER_POLICY})


@router.get(f'/runs/{{run}}/{MANIFEST}')
def manifest(run: str, srv: ServerDep):
    # run.json records where the run's dataset, config and files are:
    # served, those paths are names, as in every other response
    return JSONResponse(srv.public_manifest(srv.run(run)))


@router.get('/runs/{run}/{file:path}')
def run_file(run: str, file: str, srv: ServerDep):
    folder = srv.runs.path(run)
    parts = file.replace('\\', '/').split('/')
    # hidden names are temporary files of atomic writes, or not ours
    if osp.isabs(file) or any(p.startswith('.') for p in parts):
        raise Forbidden(f'{file!r} is outside the run directory')
    return serve_file(osp.join(folder, file), folder, srv.runs.root,
                      missing=f'no file {file!r} in run {run!r}')


def _state(srv: ServerState, run_id: str) -> str:
    """What the listing adds after a run's link: why it is not finished."""
    try:
        summary = srv.summary(run_id)
    except Exception:  # noqa: BLE001 one run, not the page
        return ' (cannot be read: GET /api/runs says why)'
    if summary.complete:
        return ''
    steps = [f'{s} pending' for s in summary.pending_steps] + \
        [f'{s} failed' for s in summary.failed_steps]
    return (' <strong>(incomplete: ' + html.escape(', '.join(steps)) +
            ')</strong>')


def _served_page(text: str, run_id: str) -> str:
    """The explorer page with its images taken from the API.

    The page on disk shows thumbnails only (it must open from file://);
    served, the full image comes from ``/api/runs/{run}/images/{position}``
    and the thumbnail sheets from ``/api/runs/{run}/thumbs/``.
    A page without the config block (older, or not the explorer's) is
    served as it is.
    """
    try:
        from tsneviz.explorer import with_config
    except ImportError:
        return text
    try:
        # {position} is filled in by the page: the API's {index} is a row
        return with_config(text, image_url=f'/api/runs/{run_id}/images/'
                           '{position}?size=full', **_thumb_urls(run_id))
    except UserError:
        return text


def _thumb_urls(run_id: str) -> dict:
    """The page's packed thumbnails from the API (routes/images.py)."""
    base = f'/api/runs/{run_id}/thumbs/'
    return dict(sheet_url=base + 'sheet_{sheet}.png',
                thumbs_script=base + 'index.js')


def _write_explorer(run_dir: str) -> None:
    try:
        from tsneviz.explorer import write_explorer
    except ImportError as err:
        if err.name == 'tsneviz.explorer':
            raise NotFound('the run has no explorer page (index.html) and '
                           'this tsneviz has no tsneviz.explorer to make '
                           'one') from None
        raise UserError(f'cannot make the explorer page: {err}') from None
    # the folders it writes into: a planted link is refused (403)
    for folder in (EXPLORER_DATA, THUMBS):
        real_folder(run_dir, folder)
    # the run's explorer step is done now, also if Ctrl-C left it pending
    with recorded_step(run_dir, 'explorer'):
        write_explorer(run_dir)
