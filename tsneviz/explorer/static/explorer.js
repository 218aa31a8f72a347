// The explorer page's script: inlined into index.html by
// tsneviz.explorer.page.render. It reads three JSON blocks the page
// carries (tsneviz-config: URLs; tsneviz-data: sizes and legends;
// tsneviz-plot-item: the Bokeh document) and the lazily loaded data files
// written by tsneviz.explorer.data. What the downloads hold (CSV columns,
// cells, annotation folders) is decided in Python; this script only joins
// the pieces of the selected samples (tsneviz.explorer.data.selection_rows
// is the reference its rows are tested against).
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const readJson = (id) => JSON.parse($(id).textContent);
  // a server may set window.TSNEVIZ_CONFIG before this script runs
  const config = Object.assign(readJson('tsneviz-config'),
                               window.TSNEVIZ_CONFIG || {});
  const meta = readJson('tsneviz-data');
  const T = window.tsneviz = {config, meta, ready: false,
    state: {mode: 'gt', filter: 'all', focus: null, selection: [],
            hidden: {gt: new Set(), pred: new Set(), correct: new Set(),
                     cluster: new Set()}}};

  function resolve(url) {
    // absolute URLs (scheme or leading slash) are left alone
    return /^([a-z][a-z0-9+.-]*:|\/)/i.test(url) ? url
      : (config.base_url || '') + url;
  }
  function fill(template, pos) {
    const d = T.source.data;
    return template.replace(/\{(\w+)\}/g, (m, name) => {
      if (name === 'position') return String(pos);
      if (name === 'index') return String(d.index[pos]);
      if (name === 'thumb') return String(d.thumb[pos]);
      if (name === 'run') return encodeURIComponent(config.run);
      return m;
    });
  }
  // a larger image of a sample, where the config names one (a server)
  T.imageUrl = (pos) => config.image_url
    ? resolve(fill(config.image_url, pos)) : null;

  // Data the page needs only on demand: a <script> element, because
  // fetch() and XHR of file:// URLs are blocked by browsers.
  const loading = {};
  function loadScript(url, name) {
    if (!loading[name]) {
      loading[name] = new Promise((ok, fail) => {
        if (window[name]) return ok(window[name]);
        const s = document.createElement('script');
        s.src = resolve(url);
        s.onload = () => ok(window[name]);
        s.onerror = () => fail(new Error('cannot load ' + s.src));
        document.head.appendChild(s);
      });
    }
    return loading[name];
  }
  function decode(b64, Type) {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Type(bytes.buffer);
  }
  let nnCache = null;
  T.neighbors = async function () {
    if (!nnCache) {
      const raw = await loadScript(config.neighbors_script,
                                   '__tsneviz_neighbors');
      nnCache = {k: raw.k, metric: raw.metric,
                 indices: decode(raw.indices, Int32Array),
                 distances: decode(raw.distances, Float32Array)};
    }
    return nnCache;
  };
  let samplesCache = null;
  T.samples = async function () {
    if (!samplesCache) {
      const raw = await loadScript(config.samples_script,
                                   '__tsneviz_samples');
      samplesCache = Object.assign({}, raw, {
        folder: decode(raw.folder, Int32Array),
        nameQuoted: new Set(raw.name_quoted)});
    }
    return samplesCache;
  };

  // ---- formatting -------------------------------------------------------
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({'&': '&amp;',
    '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'})[c]);
  const className = (id) => id < 0 ? '–'
    : (meta.legends.names[id] !== undefined ? meta.legends.names[id]
       : String(id));
  // predictions are ids of the model's classes, which may not be the
  // dataset's (see label_space in run.json)
  const predName = (id) => id < 0 ? '–'
    : (meta.legends.pred_names[id] !== undefined
       ? meta.legends.pred_names[id] : 'model:' + id);
  const num = (v) => Number.isFinite(v) ? String(Number(v.toPrecision(6)))
    : '';
  function card(pos, extra, cls, imageUrl) {
    const d = T.source.data;
    const wrong = d.correct[pos] === 0 ? ' wrong' : '';
    const img = imageUrl
      ? `<img src="${esc(imageUrl)}" alt="sample ${d.index[pos]}">`
      : thumbHtml(pos);
    return `<figure class="sample${wrong} ${cls || ''}" data-position="${pos}"` +
      ` data-index="${d.index[pos]}" data-gt="${d.gt[pos]}"` +
      ` data-pred="${d.pred[pos]}">${img}<figcaption>${extra || ''}` +
      `</figcaption></figure>`;
  }
  function details(pos) {
    const d = T.source.data;
    let s = `#${d.index[pos]} label <b>${esc(className(d.gt[pos]))}</b>`;
    if (meta.has_predictions) {
      s += `<br>pred <b>${esc(predName(d.pred[pos]))}</b>` +
        ` score ${num(d.score[pos])}<br>loss ${num(d.loss[pos])}`;
    }
    return s;
  }

  // ---- thumbnails ---------------------------------------------------------
  // Thumbnails are cells of a few sprite sheets (tsneviz.rundir.thumbs).
  // A card holds <div class="thumb" data-thumb="t"><i></i></div>; once the
  // sheets' index is loaded, the <i> gets its cell as a background,
  // scaled to fit the box (pixelated where enlarged).
  function thumbHtml(pos) {
    const t = T.source.data.thumb[pos];
    return t < 0 ? '<div class="noimg">no image</div>'
      : `<div class="thumb" data-thumb="${t}" role="img"` +
        ` aria-label="sample ${T.source.data.index[pos]}"><i></i></div>`;
  }
  let thumbIndex = null;
  T.thumbs = async function () {
    if (!thumbIndex) {
      const raw = await loadScript(config.thumbs_script, '__tsneviz_thumbs');
      thumbIndex = Object.assign({}, raw,
                                 {sizes: decode(raw.sizes, Uint16Array)});
    }
    return thumbIndex;
  };
  // where thumbnail t lies: its sheet's URL and size, its cell's corner
  // and the thumbnail's own size (after T.thumbs() has resolved)
  T.thumbCell = function (t) {
    const ix = thumbIndex;
    const sheet = Math.floor(t / ix.per_sheet), cell = t % ix.per_sheet;
    return {sheet, url: resolve(config.sheet_url.replace('{sheet}',
                                                          String(sheet))),
            sheetWidth: ix.sheets[sheet].width,
            sheetHeight: ix.sheets[sheet].height,
            x: (cell % ix.cols) * ix.cell,
            y: Math.floor(cell / ix.cols) * ix.cell,
            w: ix.sizes[2 * t], h: ix.sizes[2 * t + 1]};
  };
  function paintThumb(el) {
    const c = T.thumbCell(Number(el.dataset.thumb));
    // the box's CSS size, known even while the hover card is hidden
    const style = getComputedStyle(el);
    const scale = Math.min(parseFloat(style.width) / c.w,
                           parseFloat(style.height) / c.h);
    const s = el.firstElementChild.style;
    s.width = `${c.w * scale}px`;
    s.height = `${c.h * scale}px`;
    s.backgroundImage = `url(${JSON.stringify(c.url)})`;
    s.backgroundSize = `${c.sheetWidth * scale}px ${c.sheetHeight * scale}px`;
    s.backgroundPosition = `${-c.x * scale}px ${-c.y * scale}px`;
    s.imageRendering = scale > 1 ? 'pixelated' : 'auto';
    el.dataset.painted = '1';
  }
  const unpainted = () =>
    document.querySelectorAll('.thumb[data-thumb]:not([data-painted])');
  async function paintThumbs() {
    if (!unpainted().length) return;
    try {
      await T.thumbs();
    } catch (err) {
      for (const el of unpainted()) el.outerHTML = '<div class="noimg">' +
        'no image</div>';
      return;
    }
    for (const el of unpainted()) paintThumb(el);
  }
  // every card, wherever it is put (hover, focus, neighbours, selection)
  new MutationObserver(paintThumbs).observe(document.body,
                                            {childList: true, subtree: true});

  // ---- mapping between data and screen ----------------------------------
  T.toCanvas = function (pos) {
    const f = T.plotView.frame;
    return [f.x_scale.compute(T.source.data.x[pos]),
            f.y_scale.compute(T.source.data.y[pos])];
  };
  T.canvasRect = () => T.plotView.canvas_view.el.getBoundingClientRect();
  // page (client) coordinates of a point, for mouse events
  T.toScreen = function (pos) {
    const r = T.canvasRect();
    const [sx, sy] = T.toCanvas(pos);
    return {x: r.left + sx, y: r.top + sy};
  };
  T.frameRect = function () {
    const r = T.canvasRect();
    const b = T.plotView.frame.bbox;
    return {left: r.left + b.left, top: r.top + b.top, width: b.width,
            height: b.height};
  };
  T.visible = function () {
    const idx = T.filter.indices;
    if (idx == null) return Array.from({length: meta.n}, (_, i) => i);
    return Array.from(idx);
  };
  function nearest(candidates, sx, sy) {
    const f = T.plotView.frame, d = T.source.data;
    let best = -1, bestD = Infinity;
    for (const i of candidates) {
      const dx = f.x_scale.compute(d.x[i]) - sx;
      const dy = f.y_scale.compute(d.y[i]) - sy;
      const dd = dx * dx + dy * dy;
      if (dd < bestD) { bestD = dd; best = i; }
    }
    return best;
  }
  // canvas coordinates of every point, computed by the scales in one pass
  // each (a million points: milliseconds, against a call per point)
  function screenPoints() {
    const f = T.plotView.frame, d = T.source.data;
    return {sx: f.x_scale.v_compute(d.x), sy: f.y_scale.v_compute(d.y)};
  }
  function nearestVisible(sx0, sy0) {
    const {sx, sy} = screenPoints(), idx = T.filter.indices;
    const count = idx == null ? meta.n : idx.length;
    let best = -1, bestD = Infinity;
    for (let j = 0; j < count; j++) {
      const i = idx == null ? j : idx[j];
      const dx = sx[i] - sx0, dy = sy[i] - sy0;
      const dd = dx * dx + dy * dy;
      if (dd < bestD) { bestD = dd; best = i; }
    }
    return best;
  }

  // ---- hover --------------------------------------------------------------
  const hover = $('tsneviz-hover');
  T.onHover = function (cb) {
    const hits = cb.index ? cb.index.indices : [];
    if (!hits || !hits.length) { hover.hidden = true; return; }
    const g = cb.geometry;
    const pos = nearest(hits, g.sx, g.sy);
    if (hover.dataset.position !== String(pos)) {
      hover.innerHTML = card(pos, details(pos), 'hover-card');
      hover.dataset.position = String(pos);
    }
    const r = T.canvasRect();
    const x = r.left + g.sx + 14, y = r.top + g.sy + 14;
    hover.style.left = Math.min(x, window.innerWidth - 130) + 'px';
    hover.style.top = Math.min(y, window.innerHeight - 170) + 'px';
    hover.hidden = false;
    const last = T.lastHover = {position: pos, at: performance.now()};
    requestAnimationFrame(() => { last.paintedAt = performance.now(); });
  };

  // ---- focus and neighbours ----------------------------------------------
  T.onTap = function (cb) {
    const g = cb.geometries;
    const pos = nearestVisible(g.sx, g.sy);
    if (pos >= 0) T.focus(pos);
  };
  T.focus = async function (pos) {
    const d = T.source.data;
    T.state.focus = pos;
    const panel = $('tsneviz-focus');
    panel.dataset.position = String(pos);
    panel.dataset.ready = '';
    $('focus-sample').innerHTML = card(pos, details(pos), 'focus-card',
                                       T.imageUrl(pos));
    const nn = await T.neighbors();
    if (T.state.focus !== pos) return;  // focus moved on meanwhile
    const k = Math.min(meta.k, nn.k);
    const items = [];
    const xs = [], ys = [];
    for (let j = 0; j < k; j++) {
      const p = nn.indices[pos * nn.k + j];
      const dist = nn.distances[pos * nn.k + j];
      items.push(card(p, `${esc(className(d.gt[p]))}` +
        (meta.has_predictions ? ` → ${esc(predName(d.pred[p]))}` : '') +
        ` · ${num(dist)}`, 'neighbor').replace('<figure ',
        `<figure data-rank="${j + 1}" data-distance="${dist}" `));
      xs.push(d.x[p]); ys.push(d.y[p]);
    }
    $('tsneviz-neighbors').innerHTML = items.join('');
    T.nearSource.data = {x: xs, y: ys};
    T.focusSource.data = {x: [d.x[pos]], y: [d.y[pos]]};
    panel.dataset.ready = '1';
  };
  $('tsneviz-neighbors').addEventListener('click', (ev) => {
    const el = ev.target.closest('.sample');
    if (el) T.focus(Number(el.dataset.position));
  });
  $('selection-grid').addEventListener('click', (ev) => {
    const el = ev.target.closest('.sample');
    if (el) T.focus(Number(el.dataset.position));
  });

  // ---- selection ----------------------------------------------------------
  // Points inside the lasso polygon / box, in screen space as Bokeh's own
  // hit test does; hidden points (legend, filter) are not selectable.
  // The polygon's edges are binned into horizontal bands: a point's
  // crossing count (even-odd rule) only changes at edges that span its y,
  // so each point tests the few edges of its band instead of all.
  function polygonTest(px, py) {
    const m = px.length;
    let y0 = Infinity, y1 = -Infinity;
    for (let k = 0; k < m; k++) {
      y0 = Math.min(y0, py[k]); y1 = Math.max(y1, py[k]);
    }
    const nBands = Math.max(1, Math.min(512, m * 4));
    const height = (y1 - y0) / nBands || 1;
    const bands = Array.from({length: nBands}, () => []);
    for (let i = 0, j = m - 1; i < m; j = i++) {
      const lo = Math.min(py[i], py[j]), hi = Math.max(py[i], py[j]);
      const b0 = Math.max(0, Math.floor((lo - y0) / height));
      const b1 = Math.min(nBands - 1, Math.floor((hi - y0) / height));
      for (let b = b0; b <= b1; b++) bands[b].push(i, j);
    }
    return function (x, y) {
      const b = Math.min(nBands - 1, Math.floor((y - y0) / height));
      const edges = bands[b];
      let inside = false;
      for (let e = 0; e < edges.length; e += 2) {
        const i = edges[e], j = edges[e + 1];
        if ((py[i] > y) !== (py[j] > y) &&
            x < (px[j] - px[i]) * (y - py[i]) / (py[j] - py[i]) + px[i]) {
          inside = !inside;
        }
      }
      return inside;
    };
  }
  T.onGeometry = function (ev) {
    if (!ev.final) return;
    const g = ev.geometry;
    const idx = T.filter.indices;
    const count = idx == null ? meta.n : idx.length;
    let x0, x1, y0, y1, inside = null;
    if (g.type === 'rect') {
      x0 = Math.min(g.sx0, g.sx1); x1 = Math.max(g.sx0, g.sx1);
      y0 = Math.min(g.sy0, g.sy1); y1 = Math.max(g.sy0, g.sy1);
    } else if (g.type === 'poly') {
      const px = Float64Array.from(g.sx), py = Float64Array.from(g.sy);
      x0 = Infinity; x1 = -Infinity; y0 = Infinity; y1 = -Infinity;
      for (let k = 0; k < px.length; k++) {
        x0 = Math.min(x0, px[k]); x1 = Math.max(x1, px[k]);
        y0 = Math.min(y0, py[k]); y1 = Math.max(y1, py[k]);
      }
      inside = polygonTest(px, py);
    } else {
      return;
    }
    const {sx, sy} = screenPoints();
    const out = new Int32Array(count);
    let found = 0;
    for (let j = 0; j < count; j++) {
      const i = idx == null ? j : idx[j];
      const x = sx[i], y = sy[i];
      if (x < x0 || x > x1 || y < y0 || y > y1) continue;
      if (inside === null || inside(x, y)) out[found++] = i;
    }
    T.onSelect(out.subarray(0, found));
  };
  // The selection's rings: pixels of one image over the plot's frame, on
  // Bokeh's overlay layer (tsneviz.explorer.page), redrawn when the view
  // moves; milliseconds for half a million points.
  const INK = 0xcc000000;  // black at alpha 0.8, RGBA bytes little-endian
  let ring = null, blank = null, chosenPending = false;
  function ringOffsets() {
    const spec = T.points.glyph.size;
    const size = typeof spec === 'number' ? spec : spec.value;
    const r = (size + 2) / 2, out = [];
    for (let dy = -Math.ceil(r) - 1; dy <= Math.ceil(r) + 1; dy++) {
      for (let dx = -Math.ceil(r) - 1; dx <= Math.ceil(r) + 1; dx++) {
        if (Math.abs(Math.hypot(dx, dy) - r) <= 0.6) out.push(dx, dy);
      }
    }
    return out;
  }
  function drawChosen() {
    const sel = T.chosen, src = T.chosenSource;
    if (blank == null) blank = src.data;
    if (!sel || !sel.length) {
      if (src.data !== blank) src.data = blank;
      return;
    }
    if (ring == null) ring = ringOffsets();
    const f = T.plotView.frame, b = f.bbox, d = T.source.data;
    const w = Math.max(1, Math.round(b.width));
    const h = Math.max(1, Math.round(b.height));
    const xs = new Float64Array(sel.length), ys = new Float64Array(sel.length);
    for (let k = 0; k < sel.length; k++) {
      xs[k] = d.x[sel[k]]; ys[k] = d.y[sel[k]];
    }
    const sx = f.x_scale.v_compute(xs), sy = f.y_scale.v_compute(ys);
    const pixels = new Uint32Array(w * h);
    for (let k = 0; k < sel.length; k++) {
      const cx = Math.round(sx[k] - b.left), cy = Math.round(sy[k] - b.top);
      for (let o = 0; o < ring.length; o += 2) {
        const x = cx + ring[o], y = cy + ring[o + 1];
        if (x >= 0 && x < w && y >= 0 && y < h) pixels[y * w + x] = INK;
      }
    }
    const Image = blank.image[0].constructor;  // Bokeh's Uint32NDArray
    const xr = T.plot.x_range, yr = T.plot.y_range;
    src.data = {image: [new Image(pixels, [h, w])], x: [xr.start],
                y: [yr.end], dw: [xr.end - xr.start], dh: [yr.end - yr.start]};
  }
  T.redrawChosen = function () {
    if (chosenPending) return;
    chosenPending = true;
    requestAnimationFrame(() => { chosenPending = false; drawChosen(); });
  };
  T.onSelect = function (indices) {
    const sel = Int32Array.from(indices).sort();
    T.state.selection = Array.from(sel);
    T.chosen = sel;
    drawChosen();
    $('selection-count').textContent = String(sel.length);
    const shown = Array.from(sel.subarray(0, meta.selection_shown));
    let body = shown.map((p) => card(p, esc(className(
      T.source.data.gt[p])), 'selected')).join('');
    if (sel.length > shown.length) {
      body += `<div class="muted">and ${sel.length - shown.length} more ` +
        '(all are in the downloads)</div>';
    }
    $('selection-grid').innerHTML = body;
    $('download-csv').disabled = !sel.length;
    $('download-annotation').disabled = !sel.length;
    $('selection-clear').disabled = !sel.length;
    const section = $('tsneviz-selection');
    section.dataset.count = String(sel.length);
    const last = T.lastSelect = {count: sel.length, at: performance.now()};
    requestAnimationFrame(() => { last.paintedAt = performance.now(); });
  };
  function save(text, name, type) {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([text], {type}));
    a.download = name;
    document.body.appendChild(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }
  // One selection CSV row per position, joined from the plot's columns and
  // samples.js (folders, file names, class-name cells), exactly as
  // tsneviz.explorer.data.selection_rows writes it; made on download only.
  function csvRows(s) {
    const d = T.source.data;
    const quote = (text) => '"' + text.replace(/"/g, '""') + '"';
    const cells = {
      index: (p) => String(d.index[p]),
      position: (p) => String(p),
      img_path: (p) => {
        const f = s.folder[p], text = s.folders[f] + s.names[p];
        return s.quoted[f] || s.nameQuoted.has(p) ? quote(text) : text;
      },
      gt_label: (p) => String(d.gt[p]),
      gt_class: (p) => {
        const g = d.gt[p];
        return g < 0 ? '\u2013'
          : g < s.gt_class.length ? s.gt_class[g] : String(g);
      },
      pred_label: (p) => d.pred[p] < 0 ? '' : String(d.pred[p]),
      pred_class: (p) => {
        const j = d.pred[p];
        return j < 0 ? ''
          : j < s.pred_class.length ? s.pred_class[j] : 'model:' + j;
      },
      score: (p) => num(d.score[p]),
      loss: (p) => num(d.loss[p]),
    };
    const row = s.columns.map((c) => {
      if (!cells[c]) throw new Error('no cell for the CSV column ' + c);
      return cells[c];
    });
    return (p) => row.map((cell) => cell(p)).join(',');
  }
  // the selection as tsneviz.exporters.selection.read_indices reads it
  T.selectionCsv = async function () {
    const s = await T.samples();
    const row = csvRows(s);
    return [s.header].concat(T.state.selection.map(row)).join('\n') + '\n';
  };
  // "relative/path label" lines, as tsneviz.exporters.splits writes them;
  // the folders come from samples.js, already relative to data_prefix
  T.selectionAnnotation = async function (label) {
    const s = await T.samples();
    return T.state.selection.map((p) =>
      `${s.ann_folders[s.folder[p]]}${s.names[p]} ${label}`)
      .join('\n') + '\n';
  };
  function parseLabel(text) {
    text = text.trim();
    if (/^\d+$/.test(text)) return Number(text);
    const id = meta.legends.names.indexOf(text);
    return id >= 0 ? id : null;
  }
  $('selection-clear').addEventListener('click', () => T.onSelect([]));
  $('download-csv').addEventListener('click', async () => {
    save(await T.selectionCsv(), 'selection.csv', 'text/csv');
  });
  $('download-annotation').addEventListener('click', async () => {
    const label = parseLabel($('annotation-label').value);
    const err = $('annotation-error');
    if (label === null) {
      err.textContent = 'type a class id (0, 1, …) or a class name';
      return;
    }
    err.textContent = '';
    save(await T.selectionAnnotation(label), `selection_label${label}.txt`,
         'text/plain');
  });

  // ---- colour, legend, filter ---------------------------------------------
  function drawLegend() {
    const mode = T.state.mode;
    const ul = $('tsneviz-legend'), bar = $('tsneviz-colorbar');
    const labels = $('tsneviz-colorbar-labels');
    if (mode === 'loss') {
      ul.innerHTML = '';
      const c = meta.legends.loss_colors;
      bar.style.display = 'block';
      bar.style.background = `linear-gradient(to right, ${c.join(',')})`;
      const [lo, hi] = meta.legends.loss_range;
      labels.innerHTML = `<span>≤ ${num(lo)}</span><span>loss (log)</span>` +
        `<span>≥ ${num(hi)}</span>`;
      return;
    }
    if (mode === 'reliability') {
      ul.innerHTML = '';
      const c = meta.legends.reliability_colors;
      bar.style.display = 'block';
      bar.style.background = `linear-gradient(to right, ${c.join(',')})`;
      labels.innerHTML = '<span>0</span><span>share of feature-space ' +
        'neighbours kept on the map</span><span>1</span>';
      return;
    }
    bar.style.display = 'none';
    labels.innerHTML = '';
    const hidden = T.state.hidden[mode];
    ul.innerHTML = (meta.legends.legends[mode] || []).map((it) =>
      `<li class="legend-item${hidden.has(it.value) ? ' off' : ''}"` +
      ` data-field="${mode}" data-value="${it.value}">` +
      `<span class="swatch" style="background:${it.color}"></span>` +
      `${esc(it.label)} <span class="count">${it.count}</span></li>`)
      .join('');
  }
  T.applyVisibility = function () {
    const d = T.source.data, h = T.state.hidden, f = T.state.filter;
    const out = [];
    for (let i = 0; i < meta.n; i++) {
      if (h.gt.has(d.gt[i]) || h.pred.has(d.pred[i]) ||
          h.correct.has(d.correct[i]) || h.cluster.has(d.cluster[i])) continue;
      if (f === 'misclassified' && d.correct[i] !== 0) continue;
      if (f === 'correct' && d.correct[i] !== 1) continue;
      if (f === 'label_issue' && d.issue[i] !== 1) continue;
      out.push(i);
    }
    T.filter.indices = out.length === meta.n ? null : out;
    $('visible-count').textContent = `${out.length} of ${meta.n} shown`;
    $('visible-count').dataset.count = String(out.length);
  };
  T.setMode = function (mode) {
    T.state.mode = mode;
    const spec = {field: mode, transform: T.mappers[mode]};
    // selection glyphs left 'auto' follow the main glyph by themselves
    for (const g of [T.points.glyph, T.points.selection_glyph,
                     T.points.nonselection_glyph]) {
      if (g != null && typeof g === 'object') g.fill_color = spec;
    }
    drawLegend();
  };
  $('color-by').addEventListener('change', (ev) => T.setMode(ev.target.value));
  $('filter').addEventListener('change', (ev) => {
    T.state.filter = ev.target.value;
    T.applyVisibility();
  });
  $('tsneviz-legend').addEventListener('click', (ev) => {
    const li = ev.target.closest('.legend-item');
    if (!li) return;
    const set = T.state.hidden[li.dataset.field];
    const v = Number(li.dataset.value);
    set.has(v) ? set.delete(v) : set.add(v);
    drawLegend();
    T.applyVisibility();
  });
  function setAll(hide) {
    const mode = T.state.mode, set = T.state.hidden[mode];
    if (!set) return;
    set.clear();
    if (hide) for (const it of meta.legends.legends[mode]) set.add(it.value);
    drawLegend();
    T.applyVisibility();
  }
  $('legend-all').addEventListener('click', () => setAll(false));
  $('legend-none').addEventListener('click', () => setAll(true));
  $('tsneviz-plot').addEventListener('mouseleave', () => {
    hover.hidden = true;
  });

  // ---- placed layers (tools/place.py) ------------------------------------
  // one checkbox per layer shows or hides its renderer
  T.setupPlaced = function (byName) {
    const box = $('tsneviz-placed');
    T.placed = (meta.placed || []).map((layer, i) => {
      const renderer = byName('tsneviz-placed-' + i);
      const label = document.createElement('label');
      label.className = 'placed-toggle';
      label.innerHTML = `<input type="checkbox" id="placed-toggle-${i}"` +
        ` checked> ${esc(layer.name)} <span class="count">${layer.n}</span>`;
      label.querySelector('input').addEventListener('change', (ev) => {
        renderer.visible = ev.target.checked;
      });
      box.appendChild(label);
      return {name: layer.name, n: layer.n, renderer};
    });
    box.hidden = !T.placed.length;
  };

  // ---- start ----------------------------------------------------------------
  function softwareGl() {
    try {
      const gl = document.createElement('canvas').getContext('webgl');
      if (!gl) return true;
      const info = gl.getExtension('WEBGL_debug_renderer_info');
      const name = info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL)
        : gl.getParameter(gl.RENDERER);
      T.glRenderer = String(name);
      return /swiftshader|llvmpipe|softpipe|software/i.test(T.glRenderer);
    } catch (err) {
      return true;
    }
  }
  const item = readJson('tsneviz-plot-item');
  const root = item.doc.roots.find((r) => r.id === item.root_id);
  if (config.backend === 'canvas' ||
      (config.backend === 'auto' && softwareGl())) {
    root.attributes.output_backend = 'canvas';
  }
  Bokeh.embed.embed_item(item, 'tsneviz-plot').then((views) => {
    const pv = views.get_by_id(item.root_id);
    const doc = pv.model.document;
    const byName = (n) => doc.get_model_by_name(n);
    T.plotView = pv;
    T.plot = pv.model;
    T.source = byName('tsneviz-source');
    T.points = byName('tsneviz-points');
    T.filter = byName('tsneviz-filter');
    T.focusSource = byName('tsneviz-focus');
    T.nearSource = byName('tsneviz-near');
    T.chosenSource = byName('tsneviz-chosen');
    T.mappers = {};
    for (const m of ['gt', 'pred', 'correct', 'cluster', 'loss']) {
      const mapper = byName('mapper-' + m);
      if (mapper) T.mappers[m] = mapper;
    }
    // only where the run measured it (a map_reliability column)
    const reliability = byName('mapper-reliability');
    if (reliability) T.mappers.reliability = reliability;
    T.webgl = pv.canvas_view.webgl != null;
    T.setupPlaced(byName);
    for (const range of [T.plot.x_range, T.plot.y_range]) {
      range.change.connect(T.redrawChosen);
    }
    drawLegend();
    $('visible-count').textContent = `${meta.n} of ${meta.n} shown`;
    $('visible-count').dataset.count = String(meta.n);
    // ready once the first frame is painted
    requestAnimationFrame(() => requestAnimationFrame(() => {
      T.readyAt = performance.now();
      T.ready = true;
      $('tsneviz-status').textContent = T.webgl ? 'WebGL'
        : 'canvas (no hardware WebGL)';
      document.body.dataset.ready = '1';
    }));
  }).catch((err) => {
    $('tsneviz-status').textContent = 'error: ' + err;
    document.body.dataset.error = String(err);
    throw err;
  });
})();
