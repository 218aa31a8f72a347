"""GPU t-SNE backends: torchdr run for real on the CPU, the others' errors,
and how ``--backend auto`` chooses."""
import importlib.util
import json
import logging
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from tests.conftest import DEMO_CONFIG, REPO
from tsneviz.errors import UserError
from tsneviz.metrics import knn_accuracy
from tsneviz.reduction import build_tsne, field
from tsneviz.reduction.gpu import TorchdrTSNE, auto_learning_rate, unit_rows
from tsneviz.reduction.tsne import (
    GPU_PREFERENCE,
    auto_backend,
    auto_candidates,
    choose_backend,
)

# One torch thread: on a shared 2-core machine torch's spinning OpenMP
# threads make a small fit many times slower (see _torch_threads).
FAST = dict(n_iter=500, n_jobs=1)


@pytest.fixture(scope='module')
def digits():
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    keep = np.sort(rng.choice(len(X), 400, replace=False))
    return X[keep].astype(np.float32), y[keep]


@pytest.fixture
def warnings_logged():
    """The warnings mmengine's current logger emits during a test."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


# -------------------------------------------------------------- torchdr


def test_torchdr_separates_the_digits_and_reports_progress(digits):
    X, y = digits
    progress = []
    reducer = build_tsne('torchdr', **FAST)
    coords = reducer.fit_transform(X, progress=lambda *a: progress.append(a))
    assert reducer.backend == 'torchdr'
    assert coords.shape == (len(X), 2) and coords.dtype == np.float32
    assert np.isfinite(coords).all()
    # chance is 0.1; openTSNE reaches 0.95 on this sample
    assert knn_accuracy(coords, y) > 0.9
    assert [done for done, _, _ in progress][:3] == [50, 100, 150]
    assert progress[-1][:2] == (500, 500)
    assert reducer.results() == dict(kl_divergence=None, n_iter=500,
                                     device='cpu')


def test_torchdr_honours_the_seed(digits):
    X, y = digits[0][:200], digits[1][:200]
    a = build_tsne('torchdr', init='random', seed=1, **FAST).fit_transform(X)
    b = build_tsne('torchdr', init='random', seed=1, **FAST).fit_transform(X)
    c = build_tsne('torchdr', init='random', seed=2, **FAST).fit_transform(X)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1.0
    assert knn_accuracy(c, y) > 0.85


def test_torchdr_takes_three_components_and_cosine(digits):
    X, y = digits[0][:200], digits[1][:200]
    coords = build_tsne('torchdr', n_components=3, metric='cosine',
                        **FAST).fit_transform(X)
    assert coords.shape == (200, 3)
    assert coords[:, 2].std() > 0.1 * coords[:, 0].std()
    assert knn_accuracy(coords, y) > 0.85


def test_flags_reach_torchdr(monkeypatch, digits):
    import torchdr
    seen = {}
    original = torchdr.TSNE.__init__

    def recording_init(self, *args, **kwargs):
        seen.update(kwargs)
        original(self, *args, **kwargs)

    monkeypatch.setattr(torchdr.TSNE, '__init__', recording_init)
    start = np.random.default_rng(0).normal(size=(100, 2))
    build_tsne('torchdr', perplexity=12.0, early_exaggeration=8.0,
               learning_rate=150.0, n_iter=260, init=start, seed=7,
               n_jobs=1).fit_transform(digits[0][:100])
    assert seen['perplexity'] == 12.0
    assert seen['early_exaggeration_coeff'] == 8.0
    assert seen['early_exaggeration_iter'] == 250
    assert seen['lr'] == 150.0
    assert seen['max_iter'] == 260
    assert seen['random_state'] == 7
    assert seen['metric'] == 'sqeuclidean'
    assert seen['device'] == 'cpu' and seen['backend'] is None
    np.testing.assert_allclose(seen['init'], start.astype(np.float32))
    # 'random' is torchdr's 'normal'
    build_tsne('torchdr', init='random', n_iter=250,
               n_jobs=1).fit_transform(digits[0][:60])
    assert seen['init'] == 'normal'


def test_torchdr_records_what_it_cannot_honour(warnings_logged):
    reducer = build_tsne('torchdr', n_iter_without_progress=100,
                         kl_tol=0.1)
    assert reducer.ignored_ == ['kl_tol', 'n_iter_without_progress']
    assert reducer.params['n_iter_without_progress'] == -1
    messages = [r.getMessage() for r in warnings_logged]
    assert any('ignores n_iter_without_progress=100 (torchdr has no such '
               'setting)' in m for m in messages)
    # torchdr's own settings are ignored, with a warning, elsewhere
    assert build_tsne('opentsne', device='cuda').ignored_ == ['device']


@pytest.mark.parametrize('params, needle', [
    (dict(init='spectral'), "has no init='spectral'"),
    (dict(device='gpu'), "device='gpu' is invalid"),
    (dict(torchdr_backend='jax'), 'torchdr_backend'),
])
def test_torchdr_bad_settings_are_one_line(params, needle):
    with pytest.raises(UserError, match=needle) as err:
        build_tsne('torchdr', **params)
    assert '\n' not in str(err.value)


def test_torchdr_perplexity_too_large_gives_both_numbers():
    reducer = build_tsne('torchdr', perplexity=30.0)
    with pytest.raises(UserError, match='perplexity 30 is too large for 20 '
                       'samples'):
        reducer.fit_transform(np.random.rand(20, 8))


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU path')
def test_torchdr_on_cuda_without_a_gpu_is_one_line(digits):
    with pytest.raises(UserError, match='torch sees no CUDA GPU'):
        build_tsne('torchdr', device='cuda', **FAST).fit_transform(
            digits[0][:50])


def test_torchdr_missing_is_one_line_naming_the_package(monkeypatch):
    # an import of torchdr that fails, as on a machine without it
    monkeypatch.setitem(sys.modules, 'torchdr', None)
    with pytest.raises(UserError) as err:
        build_tsne('torchdr')
    assert 'pip install torchdr' in str(err.value)
    assert '\n' not in str(err.value)
    assert not TorchdrTSNE.importable()


def test_a_library_that_fails_to_load_is_one_line(monkeypatch, tmp_path):
    # a package that is installed but raises on import, as cuML does
    # without a CUDA driver
    package = tmp_path / 'torchdr'
    package.mkdir()
    (package / '__init__.py').write_text(
        "raise RuntimeError('no CUDA driver\\nsecond line')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m.split('.')[0] == 'torchdr']:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(UserError) as err:
        build_tsne('torchdr')
    assert str(err.value) == (
        '--backend torchdr: torchdr is installed but does not load '
        '(RuntimeError: no CUDA driver); check the GPU and CUDA driver, or '
        'use --backend opentsne')


# ----------------------------------------------------- cuML, tsne-cuda


@pytest.mark.parametrize('backend, package', [('cuml', 'cuml-cu12'),
                                              ('tsnecuda', 'tsnecuda')])
def test_gpu_only_backends_name_their_package(backend, package):
    if importlib.util.find_spec(backend) is not None:
        # installed (a GPU machine): it builds, and refuses 3-D
        assert build_tsne(backend).backend == backend
        with pytest.raises(UserError, match='only makes 2-D layouts'):
            build_tsne(backend, n_components=3)
        return
    with pytest.raises(UserError) as err:
        build_tsne(backend)
    message = str(err.value)
    assert f'pip install {package}' in message
    assert f'--backend {backend} needs the {package} package' in message
    assert '\n' not in message


@pytest.mark.parametrize('backend', ['cuml', 'tsnecuda'])
def test_cli_with_a_missing_gpu_backend_exits_2_in_one_line(backend,
                                                            tmp_path):
    if importlib.util.find_spec(backend) is not None:
        pytest.skip(f'{backend} is installed here')
    work_dir = tmp_path / 'work'
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'vis_tsne.py'),
         DEMO_CONFIG, '--backend', backend, '--work-dir', str(work_dir)],
        capture_output=True, text=True, cwd=str(tmp_path), timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith('error: --backend ' + backend)
    assert 'pip install' in lines[-1] and 'Traceback' not in proc.stderr
    assert not list(work_dir.glob('tsne_*'))


# ----------------------------------------------------------- auto


@pytest.mark.parametrize('cuda, importable, expected', [
    (True, ['cuml', 'tsnecuda', 'torchdr'], 'cuml'),
    (True, ['torchdr', 'tsnecuda'], 'tsnecuda'),
    (True, ['torchdr'], 'torchdr'),
    (True, [], 'opentsne'),
    (False, ['cuml', 'tsnecuda', 'torchdr'], 'opentsne'),
    (False, [], 'opentsne'),
])
def test_choose_backend(cuda, importable, expected):
    assert choose_backend(cuda, importable) == expected
    candidates = auto_candidates(cuda, importable)
    assert candidates[0] == expected and candidates[-1] == 'opentsne'


def test_auto_is_the_default_and_follows_this_machine():
    assert field('backend').defaults == {'tsne': 'auto'}
    assert field('backend').choices[0] == 'auto'
    assert set(GPU_PREFERENCE) < set(field('backend').choices)
    cuda = torch.cuda.is_available()
    importable = [n for n in GPU_PREFERENCE
                  if importlib.util.find_spec(n) is not None]
    expected = choose_backend(cuda, importable)
    assert auto_backend() == expected
    assert build_tsne().backend == expected
    assert build_tsne('auto', perplexity=5.0).params['perplexity'] == 5.0
    if not cuda:
        assert expected == 'opentsne'


def test_auto_run_records_the_backend_used(tmp_path):
    from tsneviz.apis import run_features
    X, y = load_digits(return_X_y=True)
    run_dir = run_features(X[:150].astype(np.float32), list(y[:150]),
                           work_dir=str(tmp_path / 'work'),
                           tsne=dict(backend='auto', perplexity=10.0,
                                     n_iter=250),
                           analysis=(), show_progress=False)
    manifest = json.load(open(osp.join(run_dir, 'run.json')))
    assert manifest['tsne']['backend'] == auto_backend()
    assert manifest['tsne']['backend'] != 'auto'


def test_a_torchdr_run_is_recorded_as_torchdr(tmp_path):
    from tsneviz.apis import run_features
    X, y = load_digits(return_X_y=True)
    run_dir = run_features(X[:150].astype(np.float32), list(y[:150]),
                           work_dir=str(tmp_path / 'work'),
                           tsne=dict(backend='torchdr', perplexity=10.0,
                                     n_iter=250, n_jobs=1),
                           analysis=(), show_progress=False)
    manifest = json.load(open(osp.join(run_dir, 'run.json')))
    assert manifest['tsne']['backend'] == 'torchdr'
    assert manifest['tsne']['params']['device'] == 'auto'


# ------------------------------------------------------------ helpers


def test_auto_learning_rate_is_scikit_learns():
    assert auto_learning_rate(60000, 12.0) == 1250.0
    assert auto_learning_rate(100, 12.0) == 50.0


def test_unit_rows_keep_cosine_neighbours():
    from sklearn.neighbors import NearestNeighbors
    X = np.random.default_rng(0).normal(size=(200, 16)).astype(np.float32)
    U = unit_rows(X)
    np.testing.assert_allclose(np.linalg.norm(U, axis=1), 1, rtol=1e-5)
    cosine = NearestNeighbors(n_neighbors=10, metric='cosine').fit(X)
    euclid = NearestNeighbors(n_neighbors=10).fit(U)
    np.testing.assert_array_equal(cosine.kneighbors(X)[1],
                                  euclid.kneighbors(U)[1])


def test_a_dense_fit_too_big_for_memory_is_refused_in_one_line(
        monkeypatch, digits):
    from tsneviz.reduction import gpu
    gpu.check_dense_memory(1000, 'cpu')  # 12 MB: fits anywhere
    with pytest.raises(UserError) as err:
        gpu.check_dense_memory(10_000_000, 'cpu')  # about 1.1 PB
    assert "torchdr_backend='keops'" in str(err.value)
    assert '\n' not in str(err.value)
    # the fit itself checks before it starts: with (almost) no memory to
    # spare, even 50 samples are refused
    monkeypatch.setattr(gpu, 'DENSE_MEMORY_SHARE', 1e-12)
    with pytest.raises(UserError, match='50 x 50 matrices'):
        build_tsne('torchdr', **FAST).fit_transform(digits[0][:50])


def test_a_one_call_library_fit_keeps_its_results(digits):
    # cuML and tsne-cuda fit in one call and expose kl_divergence_, as
    # scikit-learn's TSNE does: the shared wrapper runs it like theirs
    from types import SimpleNamespace

    from sklearn.manifold import TSNE as SklearnLibraryTSNE

    from tsneviz.reduction.gpu import _fit_library
    reducer = SimpleNamespace()  # where the backend keeps its results
    calls = []
    coords = _fit_library(
        reducer, SklearnLibraryTSNE(perplexity=10, max_iter=250,
                                    random_state=0),
        digits[0][:200], 250, lambda *args: calls.append(args))
    assert coords.shape == (200, 2) and coords.dtype == np.float32
    assert reducer.kl_divergence_ > 0 and reducer.n_iter_ == 250
    assert calls[0][:2] == (0, 250) and calls[-1] == (250, 250,
                                                      reducer.kl_divergence_)
