"""The two label spaces of a run: the dataset's classes and the model's.

A model trained on ImageNet has 1000 classes; the folder it is run on may
hold 10 others, or 3 of its own. Predictions are always ids of the model's
classes, ground truth ids of the dataset's. Only where the two can be
matched (:func:`match`) is a prediction compared with the truth (loss,
errors, accuracy, confusion); elsewhere those are left out, never made up.

This module is the one place that turns a label id into a class name and a
dataset id into a model id. A run records its label space in ``run.json``
(``label_space``); :meth:`LabelSpace.from_run` reads it back, with a
fallback for runs written before it existed.
"""
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

#: How many unmatched names a reason quotes.
_QUOTED = 3


@dataclass(frozen=True)
class LabelSpace:
    """The dataset's classes, the model's, and how ids map between them.

    Attributes:
        dataset_size (int): Number of dataset classes.
        dataset_names (tuple[str], optional): Their names, None if unknown.
        model_size (int, optional): Number of model classes (the head's
            ``num_classes``); None when the model makes no predictions.
        model_names (tuple[str], optional): Their names, None if unknown.
        to_model_ids (tuple[int], optional): Model id of each dataset id;
            None when the spaces are not matched.
        how (str): How they were matched, or why there is nothing to match.
        reason (str, optional): Why they could not be matched.
    """

    dataset_size: int
    dataset_names: Optional[Tuple[str, ...]] = None
    model_size: Optional[int] = None
    model_names: Optional[Tuple[str, ...]] = None
    to_model_ids: Optional[Tuple[int, ...]] = None
    how: str = ''
    reason: Optional[str] = None

    # ------------------------------------------------------------ building
    @classmethod
    def build(cls, dataset_names: Optional[Sequence] = None,
              labels: Optional[Sequence[int]] = None,
              model_size: Optional[int] = None,
              model_names: Optional[Sequence] = None) -> 'LabelSpace':
        """The label space of a new run, matched by :func:`match`.

        Args:
            dataset_names (Sequence, optional): Names of all dataset classes.
            labels (Sequence[int], optional): Ground-truth ids of the
                samples; give the dataset's size when it has no names.
            model_size (int, optional): The model's class count; None for a
                model without predictions.
            model_names (Sequence, optional): Names of the model's classes;
                dropped when their count is not ``model_size``.

        Returns:
            LabelSpace: Both spaces and their mapping.

        Examples:
            >>> space = LabelSpace.build(['3', '5'], [0, 1], 10,
            ...                          [str(i) for i in range(10)])
            >>> space.matched, space.to_model([0, 1]).tolist()
            (True, [3, 5])
        """
        d_names = _names(dataset_names)
        m_names = _names(model_names)
        if m_names is not None and len(m_names) != model_size:
            m_names = None  # names of some other head: they name nothing
        ids = np.asarray([] if labels is None else labels, dtype=np.int64)
        size = len(d_names) if d_names is not None else \
            int(ids.max(initial=-1)) + 1
        mapping, how, reason = match(d_names, size, model_size, m_names)
        return cls(size, d_names, model_size, m_names,
                   None if mapping is None else tuple(mapping), how, reason)

    @classmethod
    def from_json(cls, section: dict) -> 'LabelSpace':
        """Read back :meth:`to_json`."""
        dataset, model = section['dataset'], section.get('model')
        mapping = section.get('to_model')
        return cls(int(dataset['size']), _names(dataset.get('names')),
                   None if model is None else int(model['size']),
                   None if model is None else _names(model.get('names')),
                   None if mapping is None else tuple(int(i)
                                                      for i in mapping),
                   section.get('how', ''), section.get('reason'))

    @classmethod
    def from_run(cls, manifest: dict, table: Optional[Dict] = None
                 ) -> 'LabelSpace':
        """The label space of a run: ``run.json``'s, else the old rule.

        Runs written before label spaces were recorded compared predictions
        with the truth as they were; their space is that assumption (one
        space, named by ``classes``).

        Args:
            manifest (dict): ``run.json``.
            table (dict, optional): ``samples.csv`` columns, for old runs.

        Returns:
            LabelSpace: The run's label space.
        """
        if manifest.get('label_space'):
            return cls.from_json(manifest['label_space'])
        return cls.assumed(manifest.get('classes'), table or {})

    @classmethod
    def assumed(cls, classes: Optional[Sequence], table: Dict
                ) -> 'LabelSpace':
        """One space for truth and predictions, as runs before this had.

        Names come from ``classes``, else from the table's ``gt_class`` and
        ``pred_class`` columns; unnamed ids are their numbers.

        Args:
            classes (Sequence, optional): Class names, indexed by id.
            table (dict): Per-sample columns (``gt_label``, ``gt_class``,
                ``pred_label``, ``pred_class``).

        Returns:
            LabelSpace: A matched space (the identity mapping).
        """
        found: Dict[int, str] = {}
        for label_col, name_col in (('gt_label', 'gt_class'),
                                    ('pred_label', 'pred_class')):
            for y, name in zip(table.get(label_col, ()),
                               table.get(name_col, ())):
                if _is_id(y):
                    found.setdefault(int(float(y)), _text(name))
        ids = [int(float(y)) for col in ('gt_label', 'pred_label')
               for y in table.get(col, ()) if _is_id(y)]
        names = [str(c) for c in classes or []]
        size = max([len(names)] + [i + 1 for i in ids])
        names += [found.get(i, str(i)) for i in range(len(names), size)]
        predicts = 'pred_label' in table
        return cls(size, tuple(names) if names else None,
                   size if predicts else None, None,
                   tuple(range(size)) if predicts else None,
                   'assumed: one label space (run written before label '
                   'spaces were recorded)' if predicts else
                   'the model makes no predictions')

    def to_json(self) -> dict:
        """The ``label_space`` section of ``run.json``."""
        model = None if self.model_size is None else dict(
            size=self.model_size, names=_list(self.model_names))
        return dict(dataset=dict(size=self.dataset_size,
                                 names=_list(self.dataset_names)),
                    model=model, matched=self.matched, how=self.how,
                    reason=self.reason, to_model=_list(self.to_model_ids))

    # ------------------------------------------------------------- queries
    @property
    def matched(self) -> bool:
        """Predictions can be compared with the truth."""
        return self.to_model_ids is not None

    def dataset_name(self, label: int) -> str:
        """Name of a dataset class id (its number when unnamed)."""
        label = int(label)
        if self.dataset_names is not None and \
                0 <= label < len(self.dataset_names):
            return self.dataset_names[label]
        model_id = self._to_model_id(label)
        if self.model_names is not None and model_id >= 0:
            return self.model_names[model_id]
        return str(label)

    def model_name(self, label: int) -> str:
        """Name of a model class id.

        Its own name when the model's classes have names; matched to the
        dataset, the dataset's name (or number); else ``model:<id>``, so an
        unnamed model class never reads as a dataset class.
        """
        label = int(label)
        if self.model_names is not None and \
                0 <= label < len(self.model_names):
            return self.model_names[label]
        if self.matched:
            dataset_id = self._from_model().get(label)
            return str(label) if dataset_id is None \
                else self.dataset_name(dataset_id)
        return f'model:{label}'

    def to_model(self, labels) -> np.ndarray:
        """Model ids of dataset ids (-1 for unknown ones).

        Raises:
            ValueError: When the spaces are not matched.
        """
        if not self.matched:
            raise ValueError(f'the label spaces are not matched: '
                             f'{self.reason}')
        mapping = np.asarray(self.to_model_ids + (-1,), dtype=np.int64)
        labels = np.asarray(labels, dtype=np.int64)
        inside = (labels >= 0) & (labels < len(self.to_model_ids))
        return np.where(inside, mapping[np.where(inside, labels, -1)], -1)

    def correct(self, gt, pred) -> Optional[np.ndarray]:
        """``pred == gt`` in the model's space; None when not matched.

        Args:
            gt (array-like): Dataset ids.
            pred (array-like): Model ids.

        Returns:
            np.ndarray | None: Boolean per sample.
        """
        if not self.matched:
            return None
        return self.to_model(gt) == np.asarray(pred, dtype=np.int64)

    def dataset_classes(self) -> Optional[list]:
        """Names of every dataset class, or None when none are known."""
        if self.dataset_names is None and self.model_names is None:
            return None
        names = [self.dataset_name(i) for i in range(self.dataset_size)]
        return names or None

    def describe(self) -> str:
        """One line for the log."""
        if self.model_size is None:
            return 'label spaces: the model makes no predictions'
        sizes = (f'dataset {self.dataset_size} classes, model '
                 f'{self.model_size}')
        if self.matched:
            return f'label spaces matched ({sizes}): {self.how}'
        return (f'label spaces not matched ({sizes}): {self.reason}; '
                'predictions are reported in the model\'s classes, without '
                'loss, errors or accuracy')

    def _to_model_id(self, label: int) -> int:
        if self.to_model_ids is None or \
                not 0 <= label < len(self.to_model_ids):
            return -1
        return self.to_model_ids[label]

    def _from_model(self) -> Dict[int, int]:
        return {m: d for d, m in enumerate(self.to_model_ids or ())
                if m >= 0}


def match(dataset_names: Optional[Sequence[str]], dataset_size: int,
          model_size: Optional[int],
          model_names: Optional[Sequence[str]]):
    """Decide whether dataset ids can be read as model ids, and how.

    The rule: with names on both sides, by name (same names, another order
    or a subset of the model's classes); with names on one side at most, by
    count (same number of classes); a dataset without names has ids that
    are taken as the model's when they fit.

    Args:
        dataset_names (Sequence[str], optional): Dataset class names.
        dataset_size (int): Dataset class count (its largest id + 1 when
            it has no names).
        model_size (int, optional): Model class count; None: no model
            predictions.
        model_names (Sequence[str], optional): Model class names.

    Returns:
        tuple: ``(mapping, how, reason)``: ``mapping[i]`` is the model id of
        dataset id ``i``, or None when not matched; ``how`` says how (or
        that nothing was compared); ``reason`` why not matched, else None.

    Examples:
        >>> match(['b', 'a'], 2, 3, ['a', 'b', 'c'])[0]
        [1, 0]
        >>> match(['0', '1'], 2, 1000, None)[0] is None
        True
    """
    if model_size is None:
        return None, 'the model makes no predictions', None
    if dataset_names is not None and model_names is not None:
        if list(dataset_names) == list(model_names):
            return list(range(model_size)), 'same class names', None
        index = {name: i for i, name in enumerate(model_names)}
        missing = [n for n in dataset_names if n not in index]
        if not missing and len(index) == len(model_names):
            subset = len(dataset_names) < model_size
            return ([index[n] for n in dataset_names],
                    f'by class name ({len(dataset_names)} of the model\'s '
                    f'{model_size} classes)' if subset else
                    'by class name (same classes, another order)', None)
        if missing:
            quoted = ', '.join(repr(n) for n in missing[:_QUOTED])
            more = ', ...' if len(missing) > _QUOTED else ''
            why = (f'{len(missing)} of the dataset\'s {len(dataset_names)} '
                   f'classes are not classes of the model ({quoted}{more})')
        else:
            why = 'the model\'s class names repeat, so names are ambiguous'
        return None, 'not matched', why
    if dataset_names is None:
        if dataset_size <= model_size:
            return (list(range(dataset_size)),
                    'the dataset has no class names: its label ids are '
                    f'taken as the model\'s ({model_size} classes)', None)
        return None, 'not matched', (
            f'the dataset\'s label ids reach {dataset_size - 1}, beyond the '
            f'model\'s {model_size} classes')
    if dataset_size == model_size:
        return (list(range(model_size)),
                f'same number of classes ({model_size}); the model\'s have '
                'no names', None)
    return None, 'not matched', (
        f'the dataset has {dataset_size} classes and the model '
        f'{model_size}, and the model\'s classes have no names to match by')


def _names(names: Optional[Sequence]) -> Optional[Tuple[str, ...]]:
    if names is None or len(names) == 0:
        return None
    return tuple(str(n) for n in names)


def _list(values) -> Optional[list]:
    return None if values is None else list(values)


def _is_id(value) -> bool:
    try:
        return np.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _text(value) -> str:
    # samples.csv read back turns an all-digit class column into floats;
    # show 3.0 as '3' again.
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)
