"""The FastAPI application: explorer pages and the REST API over runs.

Routes (the OpenAPI spec is at ``/openapi.json``, browsable at ``/docs``),
one router per resource in :mod:`tsneviz.server.routes`:

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
sample / not clustered, 408 body too slow, 409 run full of selections,
job already finished or a broken run (its files cannot be read), 413 body
too large, 422 malformed or invalid body or query (k too large included,
an image over the pixel limit), 429 job or placement queue full.
"""
import logging
import os.path as osp
from typing import Optional, Sequence

from fastapi import FastAPI

from tsneviz.server import selections as sel
from tsneviz.server.context import ServerSettings, ServerState
from tsneviz.server.errors import NotFound, Unprocessable
from tsneviz.server.handlers import add_error_handlers
from tsneviz.server.jobs import MAX_QUEUE, JobManager
from tsneviz.server.routes import ROUTERS
from tsneviz.server.runs import RunIndex
from tsneviz.server.security import (
    BodyLimit,
    LoopbackHostGuard,
    OriginGuard,
    PathGuard,
    SecurityHeaders,
    TokenGuard,
)
from tsneviz.server.state import StateDir

__all__ = ['create_app', 'MAX_BODY_BYTES', 'BODY_TIMEOUT_S', 'NotFound',
           'Unprocessable']

#: Default request body limit: a selection of 100 000 indices is ~800 kB.
MAX_BODY_BYTES = 1 << 20
#: Default seconds a request body may take to arrive.
BODY_TIMEOUT_S = 10.0
log = logging.getLogger('tsneviz.server')


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

    Builds the shared :class:`~tsneviz.server.context.ServerState` (kept
    on ``app.state.server``), installs the error handlers and the
    security middleware and includes the routers of
    :data:`tsneviz.server.routes.ROUTERS`.

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
        data_dirs (list[str]): The only folders a job's dataset may be in
            and, when any are given, the only ones run images are served
            from (:func:`~tsneviz.server.images.dataset_root`).
        max_jobs (int): Jobs run at a time. Defaults to 1.
        max_queue (int): Jobs that may wait; more get 429. Defaults to 8.
        body_timeout (float): Seconds a request body may take; then 408.
        max_selections (int): Most selections per run; more get 409.
        max_selection_bytes (int): Most bytes of selections per run.

    Returns:
        FastAPI: An ASGI application, e.g. for ``uvicorn.run``.

    Examples:
        >>> import uvicorn
        >>> from tsneviz.server.protocol import header_deadline
        >>> app = create_app('work_dirs', configs_dir='configs',
        ...                  data_dirs=['data'])
        >>> uvicorn.run(app, host='127.0.0.1', port=8000,
        ...             http=header_deadline(), limit_concurrency=256)
    """
    settings = ServerSettings(
        root=root, configs_dir=configs_dir, checkpoints_dir=checkpoints_dir,
        token=token, max_body_bytes=max_body_bytes,
        data_dirs=tuple(data_dirs), max_jobs=max_jobs, max_queue=max_queue,
        body_timeout=body_timeout, max_selections=max_selections,
        max_selection_bytes=max_selection_bytes)
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

    app = FastAPI(
        title='tsneviz', version=_version(),
        description='Explorer pages and REST API over tsneviz run '
        'directories. `{index}` in a path is a sample POSITION (row of '
        'samples.csv, 0..N-1); `index` in bodies is the DATASET index.')
    app.state.server = ServerState(settings, runs, jobs)
    # kept for callers that stop jobs or rescan runs on a live app
    app.state.runs, app.state.jobs = runs, jobs
    add_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)

    # Outermost first on the way in: headers, path, host, origin, token,
    # then body size and time, so an unauthenticated client cannot make the
    # server buffer a body. (add_middleware puts each one outside the
    # previous.)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes,
                       timeout=body_timeout)
    app.add_middleware(TokenGuard, token=token)
    app.add_middleware(OriginGuard)
    if not token:
        app.add_middleware(LoopbackHostGuard)
    app.add_middleware(PathGuard)
    # outermost: the refusals of the guards carry the headers too
    app.add_middleware(SecurityHeaders, docs=(
        app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url))
    return app


def _version() -> str:
    try:
        from tsneviz import __version__
        return __version__
    except ImportError:
        return '0'
