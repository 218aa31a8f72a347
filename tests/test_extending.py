"""A new reducer and a new analysis step are one registered class each.

Registered here at test time, each must show up where users pick it (the
choices and flags of ``tools/vis_tsne.py``, the config keys) and run end to
end on a plain matrix (``run_features``), with nothing else edited.
"""
import importlib.util
import json
import numbers
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config

from tests.conftest import REPO
from tsneviz.analysis.steps import AnalysisStep, analysis_steps
from tsneviz.config import layout_settings
from tsneviz.errors import UserError
from tsneviz.params import Interval
from tsneviz.reduction import BaseReducer, layout_fields
from tsneviz.registry import ANALYSIS_STEPS, REDUCERS
from tsneviz.rundir import Run, step_command


class ScaledCorner(BaseReducer):
    """A toy layout: the first columns of the features, scaled."""

    name = 'ScaledCorner'
    constraints = {
        'n_components': [Interval(numbers.Integral, 2, 3)],
        'scale': [Interval(numbers.Real, 0, open_low=True)],
        'seed': [Interval(numbers.Integral, 0)],
    }
    defaults = dict(n_components=2, scale=1.0, seed=0)
    descriptions = {'scale': 'Stretch of the corner layout.'}

    def fit_transform(self, X, progress=None):
        p = self.params
        self.embedding_ = (np.asarray(X)[:, :p['n_components']] *
                           p['scale']).astype(np.float32)
        return self.embedding_


class CountStep(AnalysisStep):
    """A toy step: the number of samples, in ``count.txt``."""

    order = 45  # after the report, before the explorer

    def run(self, run_dir, context):
        with open(osp.join(run_dir, 'count.txt'), 'w') as f:
            f.write(str(len(Run(run_dir))))


@pytest.fixture
def registered_toys():
    """Register the toys, and remove them again for the other tests."""
    REDUCERS.register_module(name='corner', module=ScaledCorner)
    ANALYSIS_STEPS.register_module(name='count', module=CountStep)
    yield
    REDUCERS._module_dict.pop('corner')
    ANALYSIS_STEPS._module_dict.pop('count')


def _vis_tsne_tool():
    spec = importlib.util.spec_from_file_location(
        'vis_tsne_tool', osp.join(REPO, 'tools', 'vis_tsne.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cli_offers_a_registered_reducer_and_step(registered_toys,
                                                      capsys):
    tool = _vis_tsne_tool()
    args = tool.parse_args(['--features', 'x.npy', '--method', 'corner',
                            '--scale', '2.5', '--analysis', 'views',
                            'count'])
    assert (args.method, args.scale, args.analysis) == \
        ('corner', 2.5, ['views', 'count'])
    with pytest.raises(SystemExit):
        tool.parse_args(['--help'])
    help_text = capsys.readouterr().out
    assert 'Stretch of the corner layout. Defaults to 1.0' in help_text
    assert 'count' in help_text.split('--analysis')[1]
    with pytest.raises(SystemExit):  # a typo is refused, as before
        tool.parse_args(['--features', 'x.npy', '--method', 'cornr'])


def test_a_registered_reducer_is_known_to_the_config(registered_toys):
    assert [f.name for f in layout_fields('corner')] == \
        ['n_components', 'scale', 'seed']
    cfg = Config(dict(corner=dict(scale=3.0)))
    assert layout_settings(cfg, 'corner', {'perplexity': 5.0}) == \
        ({'scale': 3.0}, ['perplexity'])
    with pytest.raises(UserError, match='valid keys are n_components, '
                       'scale, seed'):
        layout_settings(Config(dict(corner=dict(scael=3.0))), 'corner', {})


def test_a_registered_step_runs_in_its_order(registered_toys):
    assert analysis_steps() == ['views', 'neighbors', 'clusters',
                                'label_issues', 'reliability', 'report',
                                'count', 'explorer']
    # no tool of its own: the message of a failure names the API
    assert "analyze_run" in step_command('count', '/runs/a')


def test_toy_reducer_and_step_run_end_to_end(registered_toys, tmp_path):
    from tsneviz.apis import run_features

    rng = np.random.default_rng(0)
    feats = rng.normal(size=(30, 5)).astype(np.float32)
    run_dir = run_features(feats, labels=[i % 3 for i in range(30)],
                           work_dir=str(tmp_path), method='corner',
                           tsne=dict(scale=2.0, perplexity=None),
                           analysis=['count'], show_progress=False)
    run = Run(run_dir)
    assert run.method == 'corner'
    assert run.layout_params == dict(n_components=2, scale=2.0, seed=0)
    np.testing.assert_allclose(run.coords(), feats[:, :2] * 2.0)
    assert osp.isfile(osp.join(run_dir, 'corner.log'))
    assert open(osp.join(run_dir, 'count.txt')).read() == '30'
    manifest = json.load(open(osp.join(run_dir, 'run.json')))
    assert manifest['analysis']['count']['status'] == 'ok'
    assert 'tsne' not in manifest  # t-SNE's own section only for t-SNE


def test_a_failing_registered_step_is_named(registered_toys, tmp_path,
                                            monkeypatch):
    from tsneviz.apis import run_features
    from tsneviz.rundir import AnalysisFailed

    def broken(self, run_dir, context):
        raise UserError('no count today')

    monkeypatch.setattr(CountStep, 'run', broken)
    feats = np.random.default_rng(1).normal(size=(12, 4))
    with pytest.raises(AnalysisFailed, match="'count' failed: no count "
                       'today.*analyze_run'):
        run_features(feats, work_dir=str(tmp_path), method='corner',
                     analysis=['count'], show_progress=False)
