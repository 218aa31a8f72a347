"""The page's URL config: the ``tsneviz-config`` block of ``index.html``.

The page reads every URL it loads from this JSON block, so a server can
serve the very page written for ``file://`` with other URLs
(:func:`with_config`). This module imports neither Bokeh nor Jinja2: the
server uses it on every page it serves.
"""
import json
import re

from tsneviz.errors import UserError

__all__ = ['CONFIG_ID', 'DEFAULT_CONFIG', 'json_script', 'with_config']

CONFIG_ID = 'tsneviz-config'

#: What the page's ``tsneviz-config`` block holds unless told otherwise.
#: URL templates fill ``{position}`` (row of ``samples.csv``), ``{index}``
#: (dataset index), ``{thumb}`` (thumbnail id) and ``{run}`` (the run
#: directory's name); ``sheet_url`` fills ``{sheet}``, the number of a
#: thumbnail sheet (:mod:`tsneviz.rundir.thumbs`). Relative URLs are
#: resolved against ``base_url`` (empty: the page's own folder); absolute
#: ones (``/api/...``) are not.
DEFAULT_CONFIG = dict(
    base_url='',
    sheet_url='thumbs/sheet_{sheet}.png',
    thumbs_script='thumbs/index.js',
    # larger image of the focused sample; None shows the thumbnail
    image_url=None,
    neighbors_script='explorer/neighbors.js',
    samples_script='explorer/samples.js',
    # 'webgl', 'canvas', or 'auto': WebGL unless the browser's WebGL is a
    # software rasteriser (SwiftShader, llvmpipe: no GPU), where Bokeh's
    # 2-D canvas draws 100k points about 5x faster (bench_explorer.py)
    backend='auto',
)

# The block as the page template writes it (templates/index.html.j2).
_BLOCK = re.compile(r'<script id="%s" type="application/json">(.*?)'
                    r'</script>' % CONFIG_ID, re.S)


def json_script(element_id: str, obj) -> str:
    """``obj`` as a ``<script type="application/json">`` element.

    Args:
        element_id (str): The element's id.
        obj: Anything :func:`json.dumps` takes.

    Returns:
        str: The element, safe to put anywhere in an HTML body.

    Examples:
        >>> json_script('x', {'a': 1})
        '<script id="x" type="application/json">{"a":1}</script>'
    """
    # '</' would end the <script> element early; JSON allows '<\/'.
    text = json.dumps(obj, separators=(',', ':')).replace('</', '<\\/')
    return (f'<script id="{element_id}" type="application/json">{text}'
            '</script>')


def with_config(page: str, **overrides) -> str:
    """The page's HTML with its URL config block updated.

    For a server that serves a run's ``index.html`` under another URL
    scheme, e.g. full images from an API.

    Args:
        page (str): HTML written by :func:`tsneviz.explorer.write_explorer`.
        **overrides: Keys of :data:`DEFAULT_CONFIG` (and ``run``).

    Returns:
        str: The HTML with the merged config.

    Raises:
        UserError: The page has no config block, or an override is not a
            config key.

    Examples:
        >>> page = open(osp.join(run_dir, 'index.html')).read()
        >>> served = with_config(page, base_url='/runs/r1/',
        ...                      image_url='/api/runs/r1/images/{index}')
    """
    found = _BLOCK.search(page)
    if found is None:
        raise UserError('this page has no tsneviz config block; write it '
                        'again with tsneviz.explorer.write_explorer')
    config = json.loads(found.group(1))
    unknown = set(overrides) - set(DEFAULT_CONFIG) - {'run'}
    if unknown:
        raise UserError(f'unknown explorer config keys: '
                        f'{", ".join(sorted(unknown))}')
    config.update(overrides)
    block = json_script(CONFIG_ID, config)
    return page[:found.start()] + block + page[found.end():]
