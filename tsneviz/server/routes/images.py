"""``GET /api/runs/{run}/images/{index}``: a sample's image or thumbnail."""
import os.path as osp

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from tsneviz.server.context import ERRORS, ServerDep
from tsneviz.server.errors import Forbidden, NotFound
from tsneviz.server.images import image_path, read_image

__all__ = ['router']

router = APIRouter(tags=['runs'])


@router.get('/api/runs/{run}/images/{index}', responses={
    **ERRORS, 200: {'content': {'image/png': {}, 'image/jpeg': {}},
                    'description': 'the image or its PNG thumbnail'}},
    response_class=Response)
def image(run: str, srv: ServerDep,
          index: int = Path(description='sample POSITION (row of '
                            'samples.csv)'),
          size: str = Query('thumb', pattern='^(thumb|full)$')):
    """A sample's image: ``thumb`` (PNG, longest side 128) or ``full``.

    Served only from inside the run's dataset root (symlinks resolved).
    """
    r = srv.run(run)
    path = image_path(r, srv.position(r, index))
    try:
        data, media = read_image(path, size)
    except FileNotFoundError:
        raise NotFound(f'the image of sample {index} is missing: '
                       f'{osp.basename(path)}') from None
    except ValueError as err:
        raise Forbidden(f'sample {index}: {err}') from None
    return Response(data, media_type=media,
                    headers={'Cache-Control': 'private, max-age=3600'})
