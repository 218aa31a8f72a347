"""``POST /api/runs/{run}/place``: where an uploaded image lands on a map.

Search by example: the image goes through the run's model, stage and
pooling and is placed on its map without moving it
(:mod:`tsneviz.analysis.placement`); the reply has its position, the
model's prediction and its nearest samples of the run. Nothing is written
into the run directory unless ``save`` names a layer: then the image is
kept as ``placed/<save>.images/<file>`` and the layer as
``placed/<save>.csv``, as ``tools/place.py`` writes it. A save never
replaces a layer the run has (409), a run holds at most
:data:`MAX_LAYERS` layers (409), and ``placed/`` and
``placed/<save>.images`` must be real folders of the run, not symlinks
(403, :func:`~tsneviz.server.security.real_folder`).

The upload is one multipart file (python-multipart), capped by the
server's body limit (:class:`~tsneviz.server.security.BodyLimit`), refused
from other sites (:class:`~tsneviz.server.security.OriginGuard`) and
checked to be an image before the model sees it; it is written only to a
private temporary folder, never to a path the client names.

One upload must not take the server down: an image whose header declares
more than :data:`~tsneviz.server.images.MAX_PIXELS` is refused before
anything decodes it, and placements take turns (:data:`PLACE_SLOTS` at
once, :data:`PLACE_QUEUE` waiting, then 429), so the memory they take is
bounded whatever arrives.
"""
import io
import os
import os.path as osp
import tempfile
import threading
from contextlib import contextmanager
from typing import List, Optional

from fastapi import APIRouter, File, Query, UploadFile
from pydantic import BaseModel

from tsneviz.errors import UserError
from tsneviz.rundir import write_bytes
from tsneviz.server import models as m
from tsneviz.server.context import ERRORS, ServerDep
from tsneviz.server.errors import (
    Conflict,
    Forbidden,
    TooManyRequests,
    Unprocessable,
)
from tsneviz.server.images import too_many_pixels
from tsneviz.server.security import real_folder

__all__ = ['router', 'Placed', 'MAX_LAYERS', 'PLACE_SLOTS', 'PLACE_QUEUE',
           'PLACE_WAIT_S']

router = APIRouter(tags=['runs'])

#: Image formats an upload may be, and the file suffix each is kept with.
FORMATS = {'PNG': '.png', 'JPEG': '.jpg', 'BMP': '.bmp', 'TIFF': '.tif',
           'WEBP': '.webp', 'PPM': '.ppm'}
#: Most placed layers (``placed/<name>.csv``) a run may hold for a save
#: over the API: each keeps an image and a figure in the run directory.
MAX_LAYERS = 100
#: Placements that run at once in the process. Their model step takes
#: turns anyway (one model call at a time, see
#: :func:`tsneviz.analysis.neighbors.embed_images`), so at most one upload
#: is decoded at a time (at most MAX_PIXELS: about 210 MB); a second slot
#: lets one placement's map step run beside the next one's model step, and
#: bounds the map steps, each over the run's features, to two.
PLACE_SLOTS = 2
#: Placements that may wait for a slot; more get 429 at once. Each holds
#: one of the 40 worker threads the routes share (and its upload, at most
#: the body limit): 2 + 24 leave the other routes threads to answer with.
PLACE_QUEUE = 24
#: Seconds a placement waits for a slot; then 429 with Retry-After.
PLACE_WAIT_S = 60.0


class Placed(BaseModel):
    run: str
    key: str
    x: float
    y: float
    z: Optional[float] = None
    how: str
    pred_label: Optional[int] = None
    pred_class: Optional[str] = None
    score: Optional[float] = None
    map_vote: int
    map_vote_class: str
    k: int
    neighbors: List[m.Neighbor]
    saved: Optional[str] = None


class _Turns:
    """Placements running (``slots`` at most) and waiting (``queue``).

    Thread-based, like the routes that use it: each placement runs in a
    worker thread of its own.
    """

    def __init__(self, slots: int, queue: int, wait: float):
        self._slots = threading.BoundedSemaphore(slots)
        self._queue, self._wait = queue, wait
        self._waiting = 0
        self._lock = threading.Lock()

    @contextmanager
    def turn(self):
        """Hold a slot for the ``with`` block; 429 when none comes."""
        with self._lock:
            if self._waiting >= self._queue:
                raise TooManyRequests(
                    f'{self._waiting} placements are waiting already; '
                    'send this one again in a few seconds')
            self._waiting += 1
        try:
            got = self._slots.acquire(timeout=self._wait)
        finally:
            with self._lock:
                self._waiting -= 1
        if not got:
            raise TooManyRequests(
                'the server is busy placing other images (waited '
                f'{self._wait:g} s); send this one again later')
        try:
            yield
        finally:
            self._slots.release()


_TURNS = _Turns(PLACE_SLOTS, PLACE_QUEUE, PLACE_WAIT_S)


def _image_suffix(data: bytes) -> str:
    """The suffix of an uploaded image's format; 422 when it is none.

    Reads the header only (``verify`` checks the file's structure without
    decoding its pixels), so an image over ``MAX_PIXELS`` is refused here,
    before the model's pipeline decodes it.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt, size = img.format, img.size
            refused = too_many_pixels(*size)
            if refused is None:
                img.verify()
    except Image.DecompressionBombError as err:
        # Pillow refuses at open over 2x Image.MAX_IMAGE_PIXELS
        raise Unprocessable(too_many_pixels(error=err)) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise Unprocessable('the upload is not an image that can be read; '
                            'send a PNG or JPEG file') from None
    if refused:
        raise Unprocessable(refused)
    if fmt not in FORMATS:
        raise Unprocessable(f'images in {fmt} are not taken; send one of '
                            f'{", ".join(FORMATS)}')
    return FORMATS[fmt]


def _check_new_layer(folder: str, name: str) -> None:
    """409 when the run has the layer ``name`` or :data:`MAX_LAYERS`.

    Args:
        folder (str): The run's ``placed`` folder (may be missing).
        name (str): The layer asked for.
    """
    try:
        layers = {n[:-4] for n in os.listdir(folder) if n.endswith('.csv')}
    except FileNotFoundError:
        return
    if name in layers:
        raise Conflict(
            f'the run already has a placed layer {name!r} (placed/'
            f'{name}.csv): pass another name in save=, or remove that '
            f'layer\'s files (placed/{name}.csv, .png and .images) from the '
            'run directory to save it again')
    if len(layers) >= MAX_LAYERS:
        raise Conflict(
            f'the run holds {len(layers)} placed layers, the most a save '
            'may add to: remove some (placed/<name>.csv, .png and .images '
            'in the run directory), or place without save= (nothing is '
            'written)')


def _remove_upload(path: str) -> None:
    """Remove an upload whose placement failed, and its folder if empty."""
    for remove, what in ((os.remove, path), (os.rmdir, osp.dirname(path))):
        try:
            remove(what)
        except OSError:
            return  # gone already, or the folder holds more


@router.post('/api/runs/{run}/place', response_model=Placed,
             responses=ERRORS)
def place(run: str, srv: ServerDep,
          image: UploadFile = File(description='one image file'),
          k: int = Query(10, ge=1, le=100),
          key: Optional[str] = None,
          save: Optional[str] = Query(
              None, pattern=r'^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$',
              description='keep the image and its placement as the layer '
              'placed/<save>.csv of the run; by default nothing is '
              'written')):
    """Place one uploaded image on the run's map (the map stays as it is).

    Returns its map position, the model's prediction and score (with a
    classification head), the majority class of its 10 nearest map
    samples on the map, and its ``k`` nearest samples in feature space.
    An image over the server's pixel limit gets 422; when too many
    placements wait already, 429 with ``Retry-After``.
    """
    from tsneviz.analysis.neighbors import describe_sample
    from tsneviz.analysis.placement import PLACED_DIR, place_images

    r = srv.run(run)
    if k > len(r):
        raise Unprocessable(f'k {k} is larger than the {len(r)} samples of '
                            'the run; pass a smaller k')
    data = image.file.read()
    suffix = _image_suffix(data)
    name = osp.basename(image.filename or '') or 'upload'
    name = osp.splitext(name)[0][:64] or 'upload'
    with _TURNS.turn(), \
            tempfile.TemporaryDirectory(prefix='tsneviz-place-') as tmp:
        try:
            if save:
                # one save at a time per run: the checks below hold
                with srv.run_lock(f'{run}\0placed'):
                    folder = f'{PLACED_DIR}/{save}.images'
                    path = osp.join(r.path, folder, f'upload{suffix}')
                    _check_new_layer(real_folder(r.path, PLACED_DIR,
                                                 create=False), save)
                    real_folder(r.path, folder)
                    write_bytes(path, data)
                    try:
                        placed = place_images(r.path, [path], name=save,
                                              key=key, k=k)
                    except BaseException:
                        _remove_upload(path)
                        raise
            else:
                path = osp.join(tmp, f'upload{suffix}')
                with open(path, 'wb') as f:
                    f.write(data)
                placed = place_images(r.path, [path], key=key, k=k,
                                      write=False)
        except (Forbidden, Conflict):
            raise
        except UserError as err:
            # the temporary file's path means nothing to the client
            raise Unprocessable(str(err).replace(path, name)) from None
    neighbors = srv.public_samples(r, [
        describe_sample(r, int(i), max(float(d), 0.0))
        for i, d in zip(placed.neighbors[0], placed.distances[0])])
    coords = [float(v) for v in placed.coords[0]]
    space = r.label_space
    vote = int(placed.map_vote[0])
    reply = dict(run=run, key=placed.key, x=coords[0], y=coords[1],
                 z=coords[2] if len(coords) > 2 else None, how=placed.how,
                 map_vote=vote, map_vote_class=space.dataset_name(vote),
                 k=len(neighbors), neighbors=neighbors,
                 saved=placed.name)
    if placed.pred_label is not None:
        pred = int(placed.pred_label[0])
        reply.update(pred_label=pred, pred_class=space.model_name(pred),
                     score=float(placed.score[0]))
    return reply
