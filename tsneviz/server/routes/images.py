"""``GET /api/runs/{run}/images/{index}``: a sample's image or thumbnail;
``GET /api/runs/{run}/thumbs/{name}``: the run's packed thumbnails."""
import os.path as osp

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response, StreamingResponse

from tsneviz.rundir import THUMBS
from tsneviz.server.context import ERRORS, ServerDep
from tsneviz.server.errors import Forbidden, NotFound
from tsneviz.server.files import serve_file
from tsneviz.server.images import (
    dataset_root,
    image_path,
    read_image,
    read_thumbnail,
)

__all__ = ['router']

router = APIRouter(tags=['runs'])

_THUMB_MEDIA = {'.png': 'image/png', '.json': 'application/json',
                '.js': 'text/javascript'}


@router.get('/api/runs/{run}/images/{index}', responses={
    **ERRORS, 200: {'content': {'image/png': {}, 'image/jpeg': {}},
                    'description': 'the image or its PNG thumbnail'}},
    response_class=Response)
def image(run: str, srv: ServerDep,
          index: int = Path(description='sample POSITION (row of '
                            'samples.csv)'),
          size: str = Query('thumb', pattern='^(thumb|full)$')):
    """A sample's image: ``thumb`` (PNG, the explorer's thumbnail) or
    ``full``.

    Served only for images inside the run's dataset root (symlinks
    resolved), a folder that must be a dataset's (inside a ``--data-dir``
    when the server has any); a thumbnail is cut from the run's packed
    thumbnails.
    """
    r = srv.run(run)
    position = srv.position(r, index)
    root = dataset_root(r, srv.settings.data_dirs, srv.runs.root)
    path = image_path(r, position, root)
    try:
        if size == 'thumb':
            data, media = read_thumbnail(r, position, path, root)
        else:
            data, media = read_image(path, size, root)
    except FileNotFoundError:
        raise NotFound(f'the image of sample {index} is missing: '
                       f'{osp.basename(path)}') from None
    except ValueError as err:
        raise Forbidden(f'sample {index}: {err}') from None
    return Response(data, media_type=media,
                    headers={'Cache-Control': 'private, max-age=3600'})


@router.get('/api/runs/{run}/thumbs/{name}', responses={
    **ERRORS, 200: {'content': {'image/png': {}, 'application/json': {},
                                'text/javascript': {}},
                    'description': 'a thumbnail sheet or the index'}},
    response_class=StreamingResponse)
def thumbnail_file(run: str, srv: ServerDep,
                   name: str = Path(pattern=r'^(sheet_\d{1,9}\.png|'
                                    r'index\.json|index\.js)$',
                                    description='sheet_<i>.png, index.json '
                                    'or index.js')):
    """A file of the run's packed thumbnails (``tsneviz.rundir.thumbs``).

    Only these names, and only from the run's own ``thumbs/`` folder.
    """
    folder = srv.runs.path(run)
    # no-cache: revalidated by ETag, since a repack rewrites the files
    return serve_file(osp.join(folder, THUMBS, name), folder, srv.runs.root,
                      media_type=_THUMB_MEDIA[osp.splitext(name)[1]],
                      headers={'Cache-Control': 'no-cache'},
                      missing=f'run {run!r} has no {THUMBS}/{name}: write '
                      'its explorer (tools/explore.py) to pack its '
                      'thumbnails')
