"""HTTP server over run directories: explorer pages and a REST API.

``tools/serve.py`` starts it; :func:`create_app` builds the FastAPI
application for use with any ASGI server.

Examples:
    >>> from tsneviz.server import create_app
    >>> app = create_app('work_dirs', configs_dir='configs',
    ...                  data_dirs=['data'])
"""
from tsneviz.server.app import create_app

__all__ = ['create_app']
