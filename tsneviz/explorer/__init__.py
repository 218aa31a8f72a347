"""The interactive explorer: ``index.html`` in a run directory.

:func:`write_explorer` turns a complete run directory into a standalone
page that opens from ``file://`` with no network: a WebGL scatter of the
embedding (Bokeh, its JavaScript inlined), colour by label, prediction,
correct/misclassified, cluster or loss, a clickable legend and a filter,
a thumbnail on hover, the nearest neighbours of a clicked sample, and
lasso/box selections that download as a selection CSV (columns
:data:`tsneviz.exporters.selection.CSV_COLUMNS`, read by
:func:`tsneviz.exporters.selection.read_indices`) or as mmpretrain
annotation lines (as :func:`tsneviz.exporters.splits.write_annotation`
writes them).

What it writes into the run directory (all by relative path, so the page
stays small and the folder can be moved or served as it is):

- ``index.html``: the page: plot data (binary columns), the explorer's
  script and Bokeh's;
- ``thumbs/``: a thumbnail of each distinct image, packed as cells of a
  few sprite sheets with an index (:mod:`tsneviz.rundir.thumbs`), which
  the page loads on first use;
- ``explorer/neighbors.js`` and ``explorer/samples.js``: neighbours, and
  what the downloads need beyond the plot's columns (each image folder
  once, each sample's folder id and file name), loaded by the page on
  first use rather than at open (a ``<script>`` tag, which unlike
  ``fetch`` works from ``file://``).

The page reads its URLs from a JSON block,
``<script id="tsneviz-config" type="application/json">``, so a server can
serve the same page with other image URLs: see :data:`DEFAULT_CONFIG` and
:func:`with_config`. Elements carry ids and ``data-*`` attributes for
tests, and ``window.tsneviz`` exposes the Bokeh source and the
data-to-screen mapping (``toScreen(position)``).

The modules, one step each:

- :mod:`~tsneviz.explorer.config`: the URL config block
  (:func:`with_config`; no Bokeh needed);
- :mod:`~tsneviz.explorer.thumbnails`: :func:`write_thumbnails`;
- :mod:`~tsneviz.explorer.data`: per-point columns, legends and the
  lazily loaded data files;
- :mod:`~tsneviz.explorer.page`: the Bokeh document and the page template;
- :mod:`~tsneviz.explorer.writer`: :func:`write_explorer`, all of it in
  order.

The page's CSS and JavaScript (``static/``) and its HTML template
(``templates/index.html.j2``, Jinja2) are package data.
"""
from tsneviz.explorer.config import CONFIG_ID, DEFAULT_CONFIG, with_config
from tsneviz.explorer.data import DATA_DIR
from tsneviz.explorer.page import COLOR_MODES, SELECTION_SHOWN
from tsneviz.explorer.thumbnails import THUMBS, write_thumbnails
from tsneviz.explorer.writer import PAGE, write_explorer

__all__ = ['DEFAULT_CONFIG', 'CONFIG_ID', 'PAGE', 'write_explorer',
           'write_thumbnails', 'with_config',
           # names of the files and limits, for tools and tests
           'COLOR_MODES', 'DATA_DIR', 'SELECTION_SHOWN', 'THUMBS']
