"""The report's section on placed layers (``tools/place.py``)."""
from typing import Optional

import numpy as np

from tsneviz.rundir import Run

from .render import Image, Paragraph, Section, Table


def _share(layer: dict) -> str:
    """``map_vote`` = label among the labelled samples of a layer."""
    table = layer['table']
    if 'gt_label' not in table:
        return '–'
    labels = np.array([int(v) if v != '' else -1 for v in table['gt_label']])
    known = labels >= 0
    if not known.any():
        return '–'
    votes = np.array([int(v) for v in table['map_vote']])
    same = votes[known] == labels[known]
    return f'{same.mean():.3f} ({int(same.sum())} of {len(same)})'


def placed_section(run: Run) -> Optional[Section]:
    """Counts, agreement with the map and the figure of each placed layer.

    None when nothing was placed on the run's map.
    """
    from tsneviz.analysis.placement import VOTE_K, placed_layers

    layers = placed_layers(run)
    if not layers:
        return None
    rows = [[layer['name'], layer.get('key', '–'), str(layer['n']),
             str(layer.get('labelled', 0)), _share(layer),
             layer.get('how', '–')] for layer in layers]
    blocks = [Table(['layer', 'key', 'placed', 'labelled',
                     f'{VOTE_K}-NN map majority = label', 'how'], rows),
              Paragraph(f'New samples placed on the map without moving it '
                        f'(tools/place.py). The share counts the labelled '
                        f'ones whose {VOTE_K} nearest map samples, in map '
                        'coordinates, are mostly of their own class: '
                        'where a held-out image lands is what the map says '
                        'about it.')]
    for layer in layers:
        figure = layer.get('figure')
        if figure and run.has(figure):
            blocks.append(Image(figure, f'placed layer {layer["name"]}'))
    return Section('Placed samples', blocks)
