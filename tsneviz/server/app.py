"""The FastAPI application: explorer pages and the REST API over runs.

Routes (the OpenAPI spec is at ``/openapi.json``, browsable at ``/docs``):

- ``GET /runs/{run}/``: the run's explorer page (``index.html``, made with
  :func:`tsneviz.explorer.write_explorer` when missing) and, below it, the
  run directory's files (thumbnails, plots) by relative path;
- ``GET /api/runs``, ``/api/runs/{run}/points``, ``.../neighbors/{index}``,
  ``.../clusters``, ``.../images/{index}``, ``GET|POST .../selections``,
  ``POST .../splits``, ``POST /api/jobs``, ``GET /api/jobs/{id}``.

``{run}`` is a run id (:mod:`tsneviz.server.runs`); ``{index}`` in a URL is
a sample POSITION, the row of ``samples.csv`` (0..N-1); ``index`` in
bodies and results is the DATASET index (the ``index`` column).

Every error is JSON ``{"detail": "<one message>"}``: 400 bad arguments,
401 token, 403 outside the allowed folders, 404 unknown run / job / out of
range sample / not clustered, 413 body too large, 422 malformed or invalid
body or query (k too large included).
"""
import csv
import html
import os.path as osp
import threading
from typing import Dict, Optional

from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (FileResponse, HTMLResponse, JSONResponse,
                               RedirectResponse, Response)
from starlette.exceptions import HTTPException as StarletteHTTPException

from tsneviz.errors import UserError
from tsneviz.rundir import Run
from tsneviz.server import models as m
from tsneviz.server.images import image_path, read_image
from tsneviz.server.jobs import JobManager, UnknownJob
from tsneviz.server.runs import RunIndex, UnknownRun
from tsneviz.server.security import (BodyLimit, Forbidden, LoopbackHostGuard,
                                     TokenGuard, contained)
from tsneviz.server.selections import list_selections, save_selection

__all__ = ['create_app', 'MAX_BODY_BYTES', 'NotFound', 'Unprocessable']

#: Default request body limit: a selection of 100 000 indices is ~800 kB.
MAX_BODY_BYTES = 1 << 20
EXPLORER = 'index.html'


class NotFound(UserError):
    """Something named in the URL does not exist (404)."""


class Unprocessable(UserError):
    """A well-formed request with an impossible value, e.g. k (422)."""


_STATUS = ((UnknownRun, 404), (UnknownJob, 404), (NotFound, 404),
           (Forbidden, 403), (Unprocessable, 422), (UserError, 400))
_ERRORS = {s: {'model': m.Error} for s in (400, 401, 403, 404, 413, 422)}


def _status(err: UserError) -> int:
    return next(code for kind, code in _STATUS if isinstance(err, kind))


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


def _text(value) -> Optional[str]:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def create_app(root: str, configs_dir: Optional[str] = None,
               checkpoints_dir: Optional[str] = None,
               token: Optional[str] = None,
               max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """The server of the runs under ``root``.

    Args:
        root (str): A run directory, or a work dir holding runs (searched
            three levels deep). New job runs are written under it.
        configs_dir (str, optional): The only folder jobs may take configs
            from (by relative name). None disables jobs' configs.
        checkpoints_dir (str, optional): The only folder jobs may take
            checkpoints from. None: jobs run without a checkpoint.
        token (str, optional): Required on every request when set (see
            :class:`~tsneviz.server.security.TokenGuard`). Without one,
            only requests addressed to a loopback host name are served.
        max_body_bytes (int): Larger request bodies get 413. Defaults to
            :data:`MAX_BODY_BYTES` (1 MiB).

    Returns:
        FastAPI: An ASGI application, e.g. for ``uvicorn.run``.

    Examples:
        >>> import uvicorn
        >>> app = create_app('work_dirs', configs_dir='configs')
        >>> uvicorn.run(app, host='127.0.0.1', port=8000)
    """
    runs = RunIndex(root)
    jobs = JobManager(None if runs.single else runs.root,
                      osp.abspath(configs_dir) if configs_dir else None,
                      osp.abspath(checkpoints_dir) if checkpoints_dir
                      else None, on_done=runs.id_of)
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

    # ---- errors: always {"detail": "..."} ------------------------------
    @app.exception_handler(UserError)
    async def user_error(request: Request, err: UserError):
        return JSONResponse({'detail': _message(err)}, _status(err))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError):
        return JSONResponse({'detail': _validation_detail(err)}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException):
        return JSONResponse({'detail': _message(err.detail)},
                            err.status_code, headers=err.headers)

    @app.exception_handler(Exception)
    async def bug(request: Request, err: Exception):
        return JSONResponse({'detail': f'internal error: '
                             f'{type(err).__name__}: {_message(err)}'}, 500)

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
        """Complete runs (``run.json`` present) under the server root."""
        items = []
        for run_id in runs.ids():
            try:
                items.append(summary(run_id))
            except (UserError, OSError, ValueError, KeyError):
                continue  # removed or broken since the scan: not served
        return m.RunList(runs=items)

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
                       gt_class=_class_name(r, integer('gt_label'),
                                            t.get('gt_class'), p),
                       pred_label=integer('pred_label'),
                       pred_class=_class_name(r, integer('pred_label'),
                                              t.get('pred_class'), p),
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
                           f'{r.table["img_path"][index]}') from None
        except ValueError as err:
            raise Forbidden(f'sample {index}: {err}') from None
        return Response(data, media_type=media,
                        headers={'Cache-Control': 'private, max-age=3600'})

    @app.get('/api/runs/{run}/selections', response_model=m.Selections,
             responses=_ERRORS, tags=['selections'])
    def get_selections(run: str):
        """Saved selections of the run, oldest first."""
        return dict(run=run, selections=list_selections(get_run(run)))

    @app.post('/api/runs/{run}/selections', response_model=m.Selection,
              status_code=201, responses=_ERRORS, tags=['selections'])
    def post_selection(run: str, body: m.SelectionIn):
        """Save a selection as ``RUN/selections/<id>.csv`` and ``.json``."""
        r = get_run(run)
        try:
            return save_selection(r, body.name, body.indices, body.label,
                                  body.note)
        except Forbidden:
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
        configs (checkpoints) directory; anything else is refused (403).
        """
        return jobs.submit(body.model_dump())

    @app.get('/api/jobs/{job_id}', response_model=m.Job, responses=_ERRORS,
             tags=['jobs'])
    def get_job(job_id: str):
        """State (queued, running, done, failed), progress and result."""
        return jobs.get(job_id)

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

    # Outermost first on the way in: host, then token, then body size,
    # so an unauthenticated client cannot make the server buffer a body.
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(TokenGuard, token=token)
    if not token:
        app.add_middleware(LoopbackHostGuard)
    return app


def _class_name(run: Run, label: Optional[int], column, row: int):
    # samples.csv reads numeric class names ('007') back as numbers: take
    # the name from the manifest's class list where there is one
    classes = run.classes
    if label is not None and classes and 0 <= label < len(classes):
        return str(classes[label])
    return None if column is None else _text(column[row])


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
