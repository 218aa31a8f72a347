"""The feature cache: reuse an earlier run's features for the same input.

A run's features depend on the config's model and dataset, the checkpoint,
the stage, the pooling and the samples; their hash (``feature_key`` in
``run.json``) finds an earlier complete run with the same ones.
"""
import hashlib
import json

from tsneviz import rundir


def hash_json(obj) -> str:
    """sha256 of ``obj`` as canonical JSON.

    Examples:
        >>> hash_json({'b': 1, 'a': 2}) == hash_json({'a': 2, 'b': 1})
        True
    """
    return hashlib.sha256(
        json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def load_cached(run_dir: str) -> dict:
    """The features, logits and taps of an earlier run, read by ``Run``
    (which checks every file against ``run.json``).

    Args:
        run_dir (str): The earlier run (from
            :func:`tsneviz.rundir.find_cached_run`).

    Returns:
        dict: ``features``, ``labels``, ``logits``, ``model_classes``,
        ``taps`` and ``stage``.
    """
    run = rundir.Run(run_dir)
    manifest = run.manifest
    return dict(
        features={k: run.features(k) for k in run.keys},
        labels=run.labels,
        logits=run.logits(),
        model_classes=((manifest.get('label_space') or {}).get('model')
                       or {}).get('names'),
        taps=manifest['extraction']['taps'],
        stage=manifest['extraction']['stage'])
