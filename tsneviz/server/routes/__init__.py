"""The routes of the server, one :class:`fastapi.APIRouter` per resource.

Each module has a ``router``; :func:`~tsneviz.server.app.create_app`
includes those of :data:`ROUTERS` in order (the order of the OpenAPI
spec). A route reaches the server's state through the dependency
:data:`~tsneviz.server.context.ServerDep`.

Examples:
    >>> from tsneviz.server.routes import ROUTERS
    >>> [r.routes[0].path for r in ROUTERS][:2]
    ['/api/runs', '/api/runs/{run}/points']
"""
from tsneviz.server.routes import (
    clusters,
    images,
    jobs,
    neighbors,
    pages,
    place,
    points,
    runs,
    selections,
    splits,
)

__all__ = ['ROUTERS']

#: Every router, in the order they are included.
ROUTERS = (runs.router, points.router, neighbors.router, clusters.router,
           images.router, selections.router, splits.router, jobs.router,
           place.router, pages.router)
