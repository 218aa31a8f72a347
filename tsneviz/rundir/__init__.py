"""The run directory: the contract between steps.

``work_dirs/<config>/tsne_<timestamp>/`` (``umap_``, ``pca_`` for the
other layouts: :func:`run_dir_name`) holds ``feat_<key>.npy`` and
``feat_<key>.png``, ``samples.csv`` (one row per sample), the resolved
``config.py``, the log ``<method>.log`` (:func:`log_file`) and
``run.json``. Every file is written to a
temporary name and renamed into place, and ``run.json`` comes last: a
directory without it is an incomplete run, and readers refuse it.

:class:`Run` checks what it reads (``run.json`` parses and has
``n_samples`` and the feature keys, ``samples.csv`` has that many complete
rows, every feature and layout array is whole and of that length) and
refuses a damaged run with a :class:`UserError` naming the file. The
analysis steps that follow the layout record their outcome in
``run.json``'s ``analysis`` (:func:`record_analysis`).

This package is the one owner of what a run directory is, one concept per
module, lowest first (each imports only the ones before it):

- :mod:`~tsneviz.rundir.files`: the names of its files (:data:`CLUSTERS`,
  :func:`features_file`, ...) and what makes one again (:data:`RERUN`,
  :func:`step_command`);
- :mod:`~tsneviz.rundir.io`: the atomic write (:func:`atomic_write` and
  the ``write_*`` built on it), one-line write errors
  (:func:`write_error`), the one way a file is opened for reading
  (:func:`open_regular`: a regular file, capped, no link followed below a
  given folder), and the readers of tables and arrays
  (:func:`read_table`, :func:`load_array`, :func:`read_npz`);
- :mod:`~tsneviz.rundir.schema`: the schema of ``samples.csv``
  (:data:`SAMPLE_COLUMNS`) and of ``clusters.csv`` (:data:`CLUSTER_SCHEMA`),
  and its writers (:func:`write_samples`, :func:`add_columns`);
- :mod:`~tsneviz.rundir.manifest`: ``run.json`` (:func:`read_manifest`,
  :func:`update_manifest`), the analysis steps' records
  (:func:`record_analysis`, :func:`recorded_step`), and making and finding
  run directories (:func:`new_run_dir`, :func:`find_cached_run`);
- :mod:`~tsneviz.rundir.run`: the reader, :class:`Run`, through which every
  later step reads a run.

Every name is re-exported here: import them from ``tsneviz.rundir``. To
patch a function for a test, patch it in the module that calls it (e.g.
``tsneviz.rundir.io.atomic_write``, which the ``write_*`` functions call).
"""
from tsneviz.rundir.files import (
    CLUSTERS,
    CONFIG,
    CONFUSION_PNG,
    DUPLICATES,
    EXPLORER_DATA,
    EXPLORER_PAGE,
    LOGITS,
    MANIFEST,
    NEIGHBOR_GRIDS,
    PROJECTOR,
    REPORT_HTML,
    REPORT_MD,
    RERUN,
    RUN_DIRS,
    SAMPLES_EXPORT,
    SAMPLES_PARQUET,
    SPLITS,
    TABLE,
    THUMBS,
    bulk_file,
    coords_file,
    features_file,
    log_file,
    neighbors_file,
    plot_file,
    run_dir_name,
    step_command,
)
from tsneviz.rundir.io import (
    FULL_DISK_BYTES,
    MAX_FILE_BYTES,
    MAX_JSON_BYTES,
    MAX_NPZ_BYTES,
    MAX_TABLE_BYTES,
    UnsafeFile,
    atomic_write,
    check_array,
    copy_file,
    load_array,
    open_regular,
    quiet_log_file,
    read_npz,
    read_regular,
    read_table,
    write_array,
    write_bytes,
    write_error,
    write_json,
    write_table,
    write_text,
)
from tsneviz.rundir.manifest import (
    FORMAT_VERSION,
    STEP_STATUSES,
    AnalysisFailed,
    AnalysisInterrupted,
    check_work_dir,
    failed_steps,
    find_cached_run,
    new_run_dir,
    pending_steps,
    read_manifest,
    record_analysis,
    recorded_step,
    update_manifest,
    upgrade_manifest,
)
from tsneviz.rundir.run import Run
from tsneviz.rundir.schema import (
    BOOL,
    CLUSTER_COLUMN,
    CLUSTER_COLUMNS,
    CLUSTER_SCHEMA,
    COORD_AXES,
    FLOAT,
    INT,
    SAMPLE_COLUMNS,
    TABLE_COLUMNS,
    TEXT,
    TEXT_COLUMNS,
    add_columns,
    column_kind,
    coord_column,
    flat_view_note,
    nullable_ints,
    sample_cell,
    typed_column,
    write_samples,
)

__all__ = [
    # files
    'MANIFEST', 'TABLE', 'CONFIG', 'LOGITS', 'CLUSTERS', 'CONFUSION_PNG',
    'REPORT_MD', 'REPORT_HTML', 'EXPLORER_PAGE', 'EXPLORER_DATA', 'THUMBS',
    'PROJECTOR',
    'SPLITS', 'NEIGHBOR_GRIDS', 'DUPLICATES', 'SAMPLES_PARQUET',
    'SAMPLES_EXPORT', 'RERUN', 'features_file', 'log_file', 'coords_file',
    'plot_file', 'neighbors_file', 'bulk_file', 'step_command',
    'run_dir_name', 'RUN_DIRS',
    # io
    'FULL_DISK_BYTES', 'write_error', 'quiet_log_file', 'atomic_write',
    'write_bytes', 'write_text', 'copy_file', 'write_json', 'write_array',
    'write_table', 'read_table', 'check_array', 'load_array',
    'MAX_JSON_BYTES', 'MAX_TABLE_BYTES', 'MAX_NPZ_BYTES', 'MAX_FILE_BYTES',
    'UnsafeFile', 'open_regular', 'read_regular', 'read_npz',
    # schema
    'TEXT', 'INT', 'FLOAT', 'BOOL', 'SAMPLE_COLUMNS', 'CLUSTER_COLUMN',
    'CLUSTER_SCHEMA', 'CLUSTER_COLUMNS', 'COORD_AXES', 'TABLE_COLUMNS',
    'TEXT_COLUMNS', 'coord_column', 'flat_view_note', 'column_kind',
    'typed_column',
    'nullable_ints', 'sample_cell', 'write_samples', 'add_columns',
    # manifest
    'check_work_dir', 'new_run_dir', 'read_manifest', 'update_manifest',
    'upgrade_manifest', 'FORMAT_VERSION',
    'find_cached_run', 'STEP_STATUSES', 'AnalysisFailed',
    'AnalysisInterrupted', 'recorded_step', 'record_analysis',
    'failed_steps', 'pending_steps',
    # run
    'Run',
]
