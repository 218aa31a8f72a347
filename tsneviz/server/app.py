"""The FastAPI application: explorer pages and the REST API over runs.

Routes (the OpenAPI spec is at ``/openapi.json``, browsable at ``/docs``):

- ``GET /runs/{run}/``: the run's explorer page (``index.html``, made with
  :func:`tsneviz.explorer.write_explorer` when missing) and, below it, the
  run directory's files (thumbnails, plots) by relative path;
- ``GET /api/runs``, ``/api/runs/{run}/points``, ``.../neighbors/{index}``,
  ``.../clusters``, ``.../images/{index}``, ``GET|POST .../selections``,
  ``GET|DELETE .../selections/{id}``, ``POST .../splits``,
  ``GET|POST /api/jobs``, ``GET|DELETE /api/jobs/{id}``.

``{run}`` is a run id (:mod:`tsneviz.server.runs`); ``{index}`` in a URL is
a sample POSITION, the row of ``samples.csv`` (0..N-1); ``index`` in
bodies and results is the DATASET index (the ``index`` column).

Every error is JSON ``{"detail": "<one message>"}``, naming no absolute
server path: 400 bad arguments, 401 token, 403 outside the allowed folders
or from another site, 404 unknown run / job / selection / out of range
sample / not clustered, 408 body too slow, 409 run full of selections or
job already finished, 413 body too large, 422 malformed or invalid body or
query (k too large included), 429 job queue full, 500 a broken run.
"""
import csv
import html
import logging
import os
import os.path as osp
import threading
from typing import Dict, Optional, Sequence

from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (FileResponse, HTMLResponse, JSONResponse,
                               RedirectResponse, Response)
from starlette.exceptions import HTTPException as StarletteHTTPException

from tsneviz.errors import UserError
from tsneviz.rundir import Run
from tsneviz.server import models as m
from tsneviz.server import selections as sel
from tsneviz.server.errors import (BrokenRun, Conflict, NotFound,
                                   TooManyRequests, Unprocessable, status_of)
from tsneviz.server.images import image_path, read_image
from tsneviz.server.jobs import MAX_QUEUE, JobManager, UnknownJob
from tsneviz.server.runs import RunIndex, UnknownRun
from tsneviz.server.security import (BodyLimit, Forbidden, LoopbackHostGuard,
                                     OriginGuard, PathGuard, TokenGuard,
                                     contained, strip_paths)
from tsneviz.server.state import StateDir

__all__ = ['create_app', 'MAX_BODY_BYTES', 'BODY_TIMEOUT_S', 'NotFound',
           'Unprocessable']

#: Default request body limit: a selection of 100 000 indices is ~800 kB.
MAX_BODY_BYTES = 1 << 20
#: Default seconds a request body may take to arrive.
BODY_TIMEOUT_S = 10.0
EXPLORER = 'index.html'
log = logging.getLogger('tsneviz.server')

_ERRORS = {s: {'model': m.Error} for s in (400, 401, 403, 404, 408, 409,
                                           413, 422, 429)}


def _status(err: UserError) -> int:
    return status_of(err, ((UnknownRun, 404), (UnknownJob, 404)))


def _message(err) -> str:
    return ' '.join(str(err).split())


def _validation_detail(err: RequestValidationError) -> str:
    """FastAPI's list of errors as one line, e.g. ``body.k: ...``."""
    parts = []
    for e in err.errors():
        where = '.'.join(str(x) for x in e.get('loc', ()))
        if e.get('type') == 'json_invalid':
            ctx = (e.get('ctx') or {}).get('error', '')
            parts.append(f'malformed JSON body: {ctx}'.strip())
        else:
            parts.append(f'{where}: {e.get("msg")}')
    return '; '.join(parts) or 'invalid request'


def _number(value) -> Optional[float]:
    return None if value is None or value != value else float(value)


def create_app(root: str, configs_dir: Optional[str] = None,
               checkpoints_dir: Optional[str] = None,
               token: Optional[str] = None,
               max_body_bytes: int = MAX_BODY_BYTES,
               data_dirs: Sequence[str] = (), max_jobs: int = 1,
               max_queue: int = MAX_QUEUE,
               body_timeout: float = BODY_TIMEOUT_S,
               max_selections: int = sel.MAX_COUNT,
               max_selection_bytes: int = sel.MAX_BYTES) -> FastAPI:
    """The server of the runs under ``root``.

    Args:
        root (str): A run directory, or a work dir holding runs (searched
            three levels deep). New job runs are written under it.
        configs_dir (str, optional): The only folder jobs may take configs
            from (by relative name). None disables jobs.
        checkpoints_dir (str, optional): The only folder jobs may take
            checkpoints from. None: jobs run without a checkpoint.
        token (str, optional): Required on every request when set (see
            :class:`~tsneviz.server.security.TokenGuard`). Without one,
            only requests addressed to a loopback host name are served.
        max_body_bytes (int): Larger request bodies get 413. Defaults to
            :data:`MAX_BODY_BYTES` (1 MiB).
        data_dirs (list[str]): The only folders a job's dataset may be in.
        max_jobs (int): Jobs run at a time. Defaults to 1.
        max_queue (int): Jobs that may wait; more get 429. Defaults to 8.
        body_timeout (float): Seconds a request body may take; then 408.
        max_selections (int): Most selections per run; more get 409.
        max_selection_bytes (int): Most bytes of selections per run.

    Returns:
        FastAPI: An ASGI application, e.g. for ``uvicorn.run``.

    Examples:
        >>> import uvicorn
        >>> app = create_app('work_dirs', configs_dir='configs',
        ...                  data_dirs=['data'])
        >>> uvicorn.run(app, host='127.0.0.1', port=8000)
    """
    runs = RunIndex(root)
    state = StateDir(runs.root)
    if state.owner:
        # the only server on this root: what a killed one left is stale
        for folder in runs.found(refresh=True).values():
            removed = sel.clean_selections(folder)
            if removed:
                log.warning('removed %d unfinished selection files in %s',
                            len(removed), folder)
    jobs = JobManager(None if runs.single else runs.root,
                      osp.abspath(configs_dir) if configs_dir else None,
                      osp.abspath(checkpoints_dir) if checkpoints_dir
                      else None, data_dirs=data_dirs,
                      records_dir=state.jobs, on_done=runs.id_of,
                      max_jobs=max_jobs, max_queue=max_queue,
                      recover=state.owner)
    # error messages name these folders by label, never by path
    folders = {runs.root: '<root>', configs_dir: '<configs-dir>',
               checkpoints_dir: '<checkpoints-dir>', os.getcwd(): '<cwd>',
               **{d: '<data-dir>' for d in data_dirs}}

    def scrub(text: Optional[str]) -> Optional[str]:
        return None if text is None else strip_paths(text, folders)

    locks: Dict[str, threading.Lock] = {}
    locks_guard = threading.Lock()

    def run_lock(run_id: str) -> threading.Lock:
        # Steps that rewrite run.json (splits, explorer) run one at a time
        # per run: update_manifest is read-modify-write.
        with locks_guard:
            return locks.setdefault(run_id, threading.Lock())

    app = FastAPI(
        title='tsneviz', version=_version(),
        description='Explorer pages and REST API over tsneviz run '
        'directories. `{index}` in a path is a sample POSITION (row of '
        'samples.csv, 0..N-1); `index` in bodies is the DATASET index.')
    app.state.runs, app.state.jobs = runs, jobs

    # ---- errors: always {"detail": "..."}, no server paths -------------
    @app.exception_handler(UserError)
    async def user_error(request: Request, err: UserError):
        status = _status(err)
        if status >= 500:
            log.error('%s', err)
        return JSONResponse({'detail': scrub(_message(err))}, status,
                            headers={'Retry-After': '30'}
                            if isinstance(err, TooManyRequests) else None)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError):
        return JSONResponse({'detail': scrub(_validation_detail(err))}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException):
        return JSONResponse({'detail': scrub(_message(err.detail))},
                            err.status_code, headers=err.headers)

    @app.exception_handler(Exception)
    async def bug(request: Request, err: Exception):
        log.exception('internal error on %s %s', request.method,
                      request.url.path)
        return JSONResponse({'detail': scrub(
            f'internal error: {type(err).__name__}: {_message(err)}')}, 500)

    def get_run(run_id: str) -> Run:
        return runs.run(run_id)

    def position(run: Run, index: int) -> int:
        if not 0 <= index < len(run):
            raise NotFound(f'sample {index} is out of range: the run has '
                           f'{len(run)} samples (positions 0..'
                           f'{len(run) - 1})')
        return index

    def summary(run_id: str) -> m.RunSummary:
        run = get_run(run_id)
        man = run.manifest
        return m.RunSummary(
            id=run_id, path=run.path, created=man.get('created'),
            config=man.get('config'), n_samples=len(run), keys=run.keys,
            classes=[str(c) for c in run.classes] if run.classes else None,
            clustered=osp.isfile(osp.join(run.path, 'clusters.csv')),
            has_explorer=osp.isfile(osp.join(run.path, EXPLORER)),
            explorer_url=f'/runs/{run_id}/')

    # ---- REST API ------------------------------------------------------
    @app.get('/api/runs', response_model=m.RunList, responses=_ERRORS,
             tags=['runs'])
    def list_runs():
        """Complete runs (``run.json`` present) under the server root.

        A run whose files cannot be read is listed under ``broken`` with
        the reason; it does not stop the others from being listed.
        """
        items, broken = [], []
        for run_id in runs.ids():
            try:
                items.append(summary(run_id))
            except UnknownRun:
                continue  # removed since the scan
            except BrokenRun as err:
                log.warning('%s', err)
                broken.append(m.BrokenRun(id=run_id,
                                          error=scrub(_message(err))))
            except Exception as err:  # noqa: BLE001 one run, not the list
                log.exception('run %s cannot be listed', run_id)
                broken.append(m.BrokenRun(id=run_id, error=scrub(
                    f'{type(err).__name__}: {_message(err)}')))
        return m.RunList(runs=items, broken=broken)

    @app.get('/api/runs/{run}/points', response_model=m.Points,
             responses=_ERRORS, tags=['runs'])
    def points(run: str, offset: int = Query(0, ge=0),
               limit: int = Query(1000, ge=1, le=m.MAX_PAGE),
               key: Optional[str] = Query(None, description='feature key; '
                                          'default the run\'s first')):
        """Coordinates and per-sample columns, one page of rows."""
        r = get_run(run)
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

            row = dict(position=p, index=int(float(t['index'][p])),
                       img_path=str(t['img_path'][p]),
                       gt_label=int(float(t['gt_label'][p])),
                       gt_class=_class_name(
                           space.dataset_name, integer('gt_label')),
                       pred_label=integer('pred_label'),
                       pred_class=_class_name(
                           space.model_name, integer('pred_label')),
                       score=num('score'), entropy=num('entropy'),
                       loss=num('loss'), cluster=integer('cluster'),
                       x=float(coords[p, 0]), y=float(coords[p, 1]),
                       z=float(coords[p, 2]) if coords.shape[1] > 2
                       else None)
            rows.append(row)
        return dict(run=run, key=key, total=len(r), offset=offset,
                    limit=limit, points=rows)

    @app.get('/api/runs/{run}/neighbors/{index}', response_model=m.Neighbors,
             responses=_ERRORS, tags=['runs'])
    def neighbors(run: str,
                  index: int = Path(description='sample POSITION (row of '
                                    'samples.csv)'),
                  k: int = Query(9, ge=1), key: Optional[str] = None):
        """The k nearest samples in feature space (the sample excluded)."""
        from tsneviz.analysis.neighbors import query

        r = get_run(run)
        position(r, index)
        if k > len(r) - 1:
            raise Unprocessable(f'k {k} is larger than the {len(r) - 1} '
                                'other samples of the run; pass a smaller k')
        try:
            key = r.key(key)
        except UserError as err:
            raise Unprocessable(str(err)) from None
        # query's index is a POSITION, as here
        found = query(r.path, index=index, k=k, key=key)
        return dict(run=run, position=index, k=k, neighbors=found)

    @app.get('/api/runs/{run}/clusters', response_model=m.Clusters,
             responses=_ERRORS, tags=['runs'])
    def clusters(run: str):
        """Rows of ``clusters.csv`` (written by ``tools/cluster.py``)."""
        r = get_run(run)
        path = osp.join(r.path, 'clusters.csv')
        if not osp.isfile(path):
            raise NotFound(f'run {run!r} is not clustered (no clusters.csv): '
                           f'run tools/cluster.py {r.path} first')
        with open(path, newline='', encoding='utf-8') as f:
            rows = [{k: (v if v != '' else None) for k, v in row.items()}
                    for row in csv.DictReader(f)]
        return dict(run=run, clusters=rows)

    @app.get('/api/runs/{run}/images/{index}', responses={
        **_ERRORS, 200: {'content': {'image/png': {}, 'image/jpeg': {}},
                         'description': 'the image or its PNG thumbnail'}},
        response_class=Response, tags=['runs'])
    def image(run: str,
              index: int = Path(description='sample POSITION (row of '
                                'samples.csv)'),
              size: str = Query('thumb', pattern='^(thumb|full)$')):
        """A sample's image: ``thumb`` (PNG, longest side 128) or ``full``.

        Served only from inside the run's dataset root (symlinks resolved).
        """
        r = get_run(run)
        path = image_path(r, position(r, index))
        try:
            data, media = read_image(path, size)
        except FileNotFoundError:
            raise NotFound(f'the image of sample {index} is missing: '
                           f'{osp.basename(path)}') from None
        except ValueError as err:
            raise Forbidden(f'sample {index}: {err}') from None
        return Response(data, media_type=media,
                        headers={'Cache-Control': 'private, max-age=3600'})

    @app.get('/api/runs/{run}/selections', response_model=m.Selections,
             responses=_ERRORS, tags=['selections'])
    def get_selections(run: str, offset: int = Query(0, ge=0),
                       limit: int = Query(100, ge=1,
                                          le=m.MAX_SELECTION_PAGE)):
        """One page of the run's saved selections, oldest first.

        Each is a summary (``n_indices``); ``GET .../selections/{id}``
        has its indices.
        """
        total, page = sel.list_selections(get_run(run), offset, limit)
        return dict(run=run, total=total, offset=offset, limit=limit,
                    selections=page)

    @app.get('/api/runs/{run}/selections/{selection_id}',
             response_model=m.Selection, responses=_ERRORS,
             tags=['selections'])
    def get_selection(run: str, selection_id: str):
        """A saved selection with its indices."""
        return sel.get_selection(get_run(run), selection_id)

    @app.delete('/api/runs/{run}/selections/{selection_id}', status_code=204,
                responses=_ERRORS, tags=['selections'])
    def delete_selection(run: str, selection_id: str):
        """Remove a saved selection (both its files)."""
        sel.delete_selection(get_run(run), selection_id)
        return Response(status_code=204)

    @app.post('/api/runs/{run}/selections', response_model=m.Selection,
              status_code=201, responses=_ERRORS, tags=['selections'])
    def post_selection(run: str, body: m.SelectionIn):
        """Save a selection as ``RUN/selections/<id>.csv`` and ``.json``.

        A run holds a bounded number (and size) of selections: 409 beyond.
        """
        r = get_run(run)
        # one save at a time per run, so the count limit holds
        with run_lock(f'{run}\0selections'):
            try:
                return sel.save_selection(
                    r, body.name, body.indices, body.label, body.note,
                    max_count=max_selections,
                    max_bytes=max_selection_bytes)
            except (Forbidden, Conflict):
                raise
            except UserError as err:
                raise Unprocessable(str(err)) from None

    @app.post('/api/runs/{run}/splits', response_model=m.Splits,
              responses=_ERRORS, tags=['exports'])
    def post_splits(run: str, body: m.SplitsIn):
        """Stratified train/val split to ``RUN/splits`` (make_splits.py)."""
        from tsneviz.exporters.splits import make_splits

        r = get_run(run)
        with run_lock(run):
            result = make_splits(r.path, body.val_ratio, by=body.by,
                                 dup_threshold=body.dup_threshold,
                                 seed=body.seed, key=body.key)
        strata = {str(k): v for k, v in result['strata'].items()}
        return dict(result, run=run, strata=strata)

    @app.post('/api/jobs', response_model=m.Job, status_code=202,
              responses=_ERRORS, tags=['jobs'])
    def post_job(body: m.JobIn):
        """Start an extraction + t-SNE run; poll ``GET /api/jobs/{id}``.

        ``config`` (and ``checkpoint``) are names relative to the server's
        configs (checkpoints) directory, and the dataset must lie in a
        data folder; anything else is refused (403). At most a few jobs
        wait: 429 beyond.
        """
        return public_job(jobs.submit(body.model_dump()))

    @app.get('/api/jobs', response_model=m.Jobs, responses=_ERRORS,
             tags=['jobs'])
    def list_jobs():
        """Every job the server knows, newest first."""
        return dict(jobs=[public_job(j) for j in jobs.list()])

    @app.get('/api/jobs/{job_id}', response_model=m.Job, responses=_ERRORS,
             tags=['jobs'])
    def get_job(job_id: str):
        """State (queued, running, done, failed, cancelled, interrupted),
        progress and result."""
        return public_job(jobs.get(job_id))

    @app.delete('/api/jobs/{job_id}', response_model=m.Job,
                responses=_ERRORS, tags=['jobs'])
    def cancel_job(job_id: str):
        """Cancel a queued or running job; a running one's processes are
        stopped. 409 when it has already finished."""
        return public_job(jobs.cancel(job_id))

    def public_job(job: dict) -> dict:
        return dict(job, error=scrub(job.get('error')))

    # ---- pages ---------------------------------------------------------
    @app.get('/', response_class=HTMLResponse, include_in_schema=False)
    def home():
        items = ''.join(
            f'<li><a href="/runs/{html.escape(i)}/">{html.escape(i)}</a></li>'
            for i in runs.ids())
        return (f'<!doctype html><meta charset="utf-8"><title>tsneviz runs'
                f'</title><h1>tsneviz runs</h1><ul>{items or "none"}</ul>'
                '<p><a href="/docs">API</a></p>')

    @app.get('/runs/{run}', include_in_schema=False)
    def page_redirect(run: str, request: Request):
        runs.path(run)
        # the page's asset paths are relative: they need the trailing /
        query = f'?{request.url.query}' if request.url.query else ''
        return RedirectResponse(f'/runs/{run}/{query}', 307)

    @app.get('/runs/{run}/', include_in_schema=False)
    def page(run: str):
        folder = runs.path(run)
        path = osp.join(folder, EXPLORER)
        if not osp.isfile(path):
            with run_lock(run):
                if not osp.isfile(path):
                    _write_explorer(folder)
        with open(path, encoding='utf-8') as f:
            text = f.read()
        return HTMLResponse(_served_page(text, run),
                            headers={'Cache-Control': 'no-cache'})

    @app.get('/runs/{run}/{file:path}', include_in_schema=False)
    def run_file(run: str, file: str):
        folder = runs.path(run)
        path = osp.join(folder, file)
        parts = file.replace('\\', '/').split('/')
        # hidden names are temporary files of atomic writes, or not ours
        if osp.isabs(file) or any(p.startswith('.') for p in parts) or \
                not contained(path, folder):
            raise Forbidden(f'{file!r} is outside the run directory')
        if not osp.isfile(path):
            raise NotFound(f'no file {file!r} in run {run!r}')
        return FileResponse(osp.realpath(path))

    # Outermost first on the way in: path, host, origin, token, then body
    # size and time, so an unauthenticated client cannot make the server
    # buffer a body. (add_middleware puts each one outside the previous.)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes,
                       timeout=body_timeout)
    app.add_middleware(TokenGuard, token=token)
    app.add_middleware(OriginGuard)
    if not token:
        app.add_middleware(LoopbackHostGuard)
    app.add_middleware(PathGuard)
    return app


def _class_name(name_of, label: Optional[int]) -> Optional[str]:
    # ground truth is named in the dataset's classes, predictions in the
    # model's (tsneviz.labels): the two lists differ for a pretrained head
    return None if label is None else name_of(label)


def _served_page(text: str, run_id: str) -> str:
    """The explorer page with its focused image taken from the API.

    The page on disk shows thumbnails only (it must open from file://);
    served, the full image comes from ``/api/runs/{run}/images/{position}``.
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
                           '{position}?size=full')
    except UserError:
        return text


def _write_explorer(run_dir: str) -> None:
    try:
        from tsneviz.explorer import write_explorer
    except ImportError as err:
        if err.name == 'tsneviz.explorer':
            raise NotFound('the run has no explorer page (index.html) and '
                           'this tsneviz has no tsneviz.explorer to make '
                           'one') from None
        raise UserError(f'cannot make the explorer page: {err}') from None
    write_explorer(run_dir)


def _version() -> str:
    try:
        from tsneviz import __version__
        return __version__
    except ImportError:
        return '0'
