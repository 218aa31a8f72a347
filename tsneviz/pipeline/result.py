"""One run in memory, and the files that are its views.

Every entry point ends the same way: a :class:`RunResult` (the arrays plus
one per-sample table) is built from what extraction gave, the layout of
each feature key is fitted into it (:func:`fit_layouts`), and
:func:`write_run` writes every file from it, ``run.json`` last.
"""
import os.path as osp
import platform
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from tsneviz import __version__, rundir
from tsneviz.errors import UserError

from .lifecycle import Timer
from .options import RunOptions


@dataclass
class RunResult:
    """A run in memory: arrays and one per-sample table.

    Attributes:
        features (dict[str, np.ndarray]): (N, C) features by key.
        table (dict[str, Sequence]): ``samples.csv``'s columns, the layout
            coordinates (``<key>_x``, ...) included once fitted.
        labels (np.ndarray): (N,) ground-truth labels (dataset ids).
        space (LabelSpace): The dataset's and the model's classes.
        stage (str): What was extracted (``'features'`` for a matrix).
        sections (dict): ``run.json`` sections of the source (config,
            checkpoint, data root, extraction).
        logits (np.ndarray, optional): (N, classes) with a head.
        coords (dict[str, np.ndarray]): (N, 2|3) layout by key, once
            fitted.
        results (dict[str, dict]): Per key, the reducer's figures and the
            separation metrics, once fitted.
        graphs (dict[str, dict]): Per key, the shared neighbour graph
            (:func:`tsneviz.analysis.graphs.shared_graph`), once fitted.
        feature_files (dict[str, str]): Per key, the run's features file
            once written (:meth:`map_features`); ``features`` then maps it.
    """

    features: Dict[str, np.ndarray]
    table: Dict[str, Sequence]
    labels: np.ndarray
    space: object
    stage: str
    sections: dict
    logits: Optional[np.ndarray] = None
    coords: Dict[str, np.ndarray] = field(default_factory=dict)
    results: Dict[str, dict] = field(default_factory=dict)
    graphs: Dict[str, dict] = field(default_factory=dict)
    feature_files: Dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, *, features: Dict[str, np.ndarray],
              logits: Optional[np.ndarray], indices: np.ndarray,
              img_paths: Sequence[str], labels: np.ndarray,
              classes: Optional[Sequence[str]], stage: str, sections: dict,
              model_classes: Optional[Sequence[str]] = None,
              logger=None) -> 'RunResult':
        """The result of an extraction, with its per-sample table.

        Raises:
            UserError: When features have NaN or Inf values.

        Examples:
            >>> result = RunResult.build(
            ...     features={'feat_0': feats}, logits=None,
            ...     indices=np.arange(len(feats)), img_paths=[''] * 10,
            ...     labels=labels, classes=None, stage='features',
            ...     sections={})
            >>> sorted(result.table)
            ['gt_class', 'gt_label', 'img_path', 'index']
        """
        from tsneviz.extraction import prediction_columns
        from tsneviz.labels import LabelSpace

        for key, feats in features.items():
            if not np.isfinite(feats).all():
                raise UserError(f'{key} has NaN or Inf values; check the '
                                'checkpoint and the stage')
        space = LabelSpace.build(classes, labels, None if logits is None
                                 else logits.shape[1], model_classes)
        if logits is not None and logger is not None:
            logger.info(space.describe())
        table = dict(index=indices, img_path=img_paths, gt_label=labels,
                     gt_class=[space.dataset_name(y) for y in labels])
        if logits is not None:
            # loss only where the truth is a class of the model
            preds = prediction_columns(
                logits, space.to_model(labels) if space.matched else None)
            table['pred_label'] = preds['pred_label']
            table['pred_class'] = [space.model_name(y)
                                   for y in preds['pred_label']]
            for name in ('score', 'entropy', 'loss'):
                if name in preds:
                    table[name] = preds[name]
        return cls(features=dict(features), table=table, labels=labels,
                   space=space, stage=stage, sections=dict(sections),
                   logits=logits)

    def __len__(self) -> int:
        return len(self.labels)

    def map_features(self, run_dir: str) -> None:
        """Write the features into the run, and read them from there.

        The layout works on 50 PCA components and the steps after it on
        samples of rows, so the features need not stay in memory: at a
        million samples that is 2 GB less during the t-SNE. The file is
        written as :func:`write_run` would; ``run.json``, written last,
        still marks the run complete.
        """
        for key in list(self.features):
            self.feature_files[key] = rundir.write_array(
                osp.join(run_dir, rundir.features_file(key)),
                self.features[key])
            self.remap(key)  # the array in memory goes with its last ref

    def remap(self, key: str) -> np.ndarray:
        """A fresh memory map of a written features file.

        Pages that a pass over every row (the PCA) brought in stay part of
        the process while the old map lives; a new map starts empty.
        """
        if key in self.feature_files:
            self.features[key] = rundir.load_array(
                self.feature_files[key], len(self), ndim=2, mmap=True)
        return self.features[key]

    def release(self) -> None:
        """Drop the arrays that are written to the run directory."""
        self.features.clear()
        self.feature_files.clear()
        self.graphs.clear()
        self.coords.clear()
        self.logits = None


def fit_layouts(result: RunResult, reducer, options: RunOptions,
                timer: Timer, logger) -> None:
    """Fit the layout of every key and measure it, into ``result``.

    Examples:
        >>> fit_layouts(result, build_reducer('pca'), RunOptions(),
        ...             Timer(), logger)
        >>> result.coords['feat_0'].shape
        (10, 2)
    """
    from tsneviz.analysis.graphs import graph_space, shared_graph
    from tsneviz.metrics import separation_metrics
    from tsneviz.reduction import fit_layout

    # by key: a loop over items() keeps the last (key, array) pair alive
    # in the iterator, and with it the pages of a remapped features file
    for key in list(result.features):
        feats = result.features[key]
        graph, offered = None, None
        if len(result) >= 3:
            # ONE neighbour search per key, for the layout's affinities
            # (3 x perplexity columns for t-SNE), the k-NN accuracy and the
            # neighbours step (and the explorer): at least 20 for the step
            space = graph_space(feats, options.seed)
            graph = shared_graph(
                feats, max(reducer.n_neighbors_for(len(result)), 20),
                seed=options.seed, space=space)
            result.graphs[key] = graph
            # the layout takes it with the features in its space: no PCA
            offered = dict(graph, points=space[0])
            del space
            feats = result.remap(key)  # drop the pages the PCA read
            timer.lap(f'neighbor_graph:{key}')
        coords = fit_layout(feats, reducer, f'{reducer.name} {key}',
                            options.show_progress, graph=offered)
        del offered
        timer.lap(f'{options.method}:{key}')
        if graph is not None:
            # whether the layout's affinities came from the shared graph
            graph['used_by_layout'] = bool(reducer.used_graph_)
        result.coords[key] = coords
        for axis, name in zip(coords.T, 'xyz'):
            result.table[f'{key}_{name}'] = axis
        metrics = {}
        if len(result) >= 3:
            metrics = separation_metrics(feats, coords, result.labels, k=10,
                                         seed=options.seed, graph=graph)
        result.results[key] = dict(reducer.results(), **metrics)
        timer.lap(f'metrics:{key}')
        logger.info(f'{key}: ' + ', '.join(
            f'{k} {v:.4f}' if isinstance(v, float) else f'{k} {v}'
            for k, v in result.results[key].items()
            if isinstance(v, (float, int))))


def write_run(run_dir: str, result: RunResult, reducer,
              options: RunOptions, timer: Timer, logger) -> str:
    """Write every file of a fitted result; ``run.json`` last.

    Args:
        run_dir (str): The new run directory.
        result (RunResult): With its layouts fitted (:func:`fit_layouts`).
        reducer (BaseReducer): The fitted reducer (its parameters go to
            ``run.json``).
        options (RunOptions): Method, seed, legend, show, argv.
        timer (Timer): The run's timings.
        logger (MMLogger): The run's logger.

    Returns:
        str: ``run_dir``.
    """
    from tsneviz.analysis.neighbors import write_graph
    from tsneviz.visualization import plot_embedding

    method = options.method
    outputs: List[str] = []

    def write_array(name, array):
        outputs.append(osp.basename(
            rundir.write_array(osp.join(run_dir, name), array)))

    for key, feats in result.features.items():
        if key in result.feature_files:  # written before the layout
            outputs.append(osp.basename(result.feature_files[key]))
        else:
            write_array(rundir.features_file(key), feats)
    if result.logits is not None:
        write_array(rundir.LOGITS, result.logits)
    names = {int(y): result.space.dataset_name(y)
             for y in np.unique(result.labels)}
    for key, coords in result.coords.items():
        write_array(rundir.coords_file(method, key), coords)
        outputs.append(osp.basename(plot_embedding(
            coords, result.labels, names,
            osp.join(run_dir, rundir.plot_file(key)),
            title=f'{key} · {result.stage} · {reducer.describe()}',
            legend=options.legend, show=options.show)))
        timer.lap(f'plot:{key}')
    neighbors, graphs = {}, {}
    for key, graph in result.graphs.items():
        name, neighbors[key] = write_graph(run_dir, key, graph,
                                           result.labels)
        outputs.append(name)
        graphs[key] = {name: graph[name] for name in (
            'builder', 'k', 'space', 'metric', 'recall', 'seconds',
            'used_by_layout')}
    outputs.append(osp.basename(rundir.write_samples(
        run_dir, result.table, list(result.features))))
    outputs += [name for name in (rundir.CONFIG, rundir.log_file(method))
                if osp.isfile(osp.join(run_dir, name))]
    timer.total()
    manifest = dict(
        format_version=rundir.FORMAT_VERSION,
        tsneviz_version=__version__,
        created=time.strftime('%Y-%m-%dT%H:%M:%S%z'),
        command=options.argv if options.argv is not None else sys.argv,
        # what relative paths in the command and config are relative to
        cwd=osp.abspath('.'),
        **result.sections,
        seed=options.seed,
        n_samples=len(result),
        classes=result.space.dataset_classes(),
        label_space=result.space.to_json(),
        layout=dict(method=method, reducer=reducer.name,
                    params=reducer.used_params(), ignored=reducer.ignored_),
        results=result.results,
        timings=timer.timings,
        **({'neighbors': neighbors, 'neighbor_graph': graphs}
           if graphs else {}),
        versions=versions(),
        outputs=outputs)
    manifest['extraction'] = dict(manifest.get('extraction', {}),
                                  stage=result.stage,
                                  keys=list(result.features),
                                  has_logits=result.logits is not None)
    manifest.update(reducer.sections())
    rundir.write_json(osp.join(run_dir, rundir.MANIFEST), manifest)
    logger.info(f'Save features and results to {run_dir}')
    return run_dir


def finish_run(run_dir: str, result: RunResult, reducer,
               options: RunOptions, timer: Timer, logger) -> str:
    """Fit, write, then run the analysis steps: the end of every run.

    Returns:
        str: ``run_dir``.

    Raises:
        AnalysisFailed: When an analysis step failed (the run is
            complete).
    """
    from tsneviz.analysis.steps import analysis_steps, analyze_run

    reducer.check_n_samples(len(result))
    result.map_features(run_dir)
    fit_layouts(result, reducer, options, timer, logger)
    write_run(run_dir, result, reducer, options, timer, logger)
    # The steps read the run from its files: what the result still holds
    # (2 GB of features and 0.7 GB of graph at a million samples) would
    # only add to their memory.
    result.release()
    steps = analysis_steps(defaults_only=True) if options.analysis is None \
        else list(options.analysis)
    if not any(result.table['img_path']):
        # no images: nothing to show as thumbnails
        needs = set(analysis_steps()) - set(analysis_steps(with_images=False))
        steps = [s for s in steps if s not in needs]
    analyze_run(run_dir, steps, logger=logger, seed=options.seed,
                show_progress=options.show_progress)
    return run_dir


def versions() -> Dict[str, str]:
    """Versions of Python, tsneviz and the libraries a run depends on.

    A library the run has not imported is looked up in the installed
    distributions instead: importing torchvision or mmpretrain only to read
    a version costs seconds in a run of plain features.
    """
    from importlib import metadata

    found = {'python': platform.python_version(), 'tsneviz': __version__}
    for name, dists in (('torch', ['torch']),
                        ('torchvision', ['torchvision']),
                        ('mmengine', ['mmengine']),
                        ('mmcv', ['mmcv', 'mmcv-lite']),
                        ('mmpretrain', ['mmpretrain']),
                        ('numpy', ['numpy']), ('sklearn', ['scikit-learn']),
                        ('openTSNE', ['openTSNE']),
                        ('matplotlib', ['matplotlib'])):
        module = sys.modules.get(name)
        if module is not None:
            found[name] = getattr(module, '__version__', 'unknown')
            continue
        for dist in dists:
            try:
                found[name] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return found
