"""HTTP server over run directories: explorer pages and a REST API.

``tools/serve.py`` starts it; :func:`create_app` builds the FastAPI
application for use with any ASGI server. The routes are one
:class:`fastapi.APIRouter` per resource in :mod:`tsneviz.server.routes`;
they reach the shared state (:class:`~tsneviz.server.context.ServerState`)
through the dependency :data:`~tsneviz.server.context.ServerDep`.

Examples:
    >>> from tsneviz.server import create_app
    >>> app = create_app('work_dirs', configs_dir='configs',
    ...                  data_dirs=['data'])
"""
from tsneviz.server.app import create_app

__all__ = ['create_app']
