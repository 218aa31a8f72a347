"""Shared fixtures: real small data made at test time.

scikit-learn's bundled digits are written once per session as an mmpretrain
``CustomDataset`` folder; the demo config and its committed checkpoint (a
slim ResNet-18 trained on them by tools/train_digits.py) are the tiny
trained model (``make_demo_run``). Tests that need a run directory but
nothing of a model use the cheaper ``make_features_run`` / ``features_run``:
the digits' own pixels through ``run_features``.
"""
import os
import os.path as osp
import warnings

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_CONFIG = osp.join(REPO, 'configs', 'digits', 'resnet18-slim_digits.py')
DEMO_CHECKPOINT = osp.join(REPO, 'configs', 'digits',
                           'resnet18-slim_digits.pth')

warnings.filterwarnings('ignore', message='pkg_resources is deprecated')
warnings.filterwarnings('ignore', message='Fail to import ``MultiScale')


def mmpretrain_config(relative: str) -> str:
    """Path of a config shipped inside the installed mmpretrain wheel."""
    import mmpretrain
    return osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'configs',
                    relative)


def pytest_collection_modifyitems(config, items):
    # every test that drives Chromium takes the fixture named browser
    for item in items:
        if 'browser' in getattr(item, 'fixturenames', ()):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope='session')
def digits_root(tmp_path_factory):
    from tsneviz.demo import write_digits
    root = str(tmp_path_factory.mktemp('digits'))
    write_digits(root)
    return root


@pytest.fixture(scope='session')
def digits_options(digits_root):
    """``--cfg-options`` that point the demo config at the test digits."""
    return {'test_dataloader.dataset.data_root': digits_root,
            'test_dataloader.num_workers': 0,
            'test_dataloader.persistent_workers': False}


@pytest.fixture
def work_dir(tmp_path):
    return str(tmp_path / 'work')


@pytest.fixture(autouse=True)
def _quiet_threads(monkeypatch):
    # Two cores here: keep BLAS and torch from oversubscribing them.
    monkeypatch.setenv('OMP_NUM_THREADS', os.environ.get('OMP_NUM_THREADS',
                                                         '2'))


def make_demo_run(work_dir, digits_options, **kwargs):
    """A real run of the demo model on the test digits, no analysis steps.

    ``kwargs`` override the small, fast defaults (30 samples per class,
    perplexity 10, 400 iterations).
    """
    from tsneviz.apis import run_vis_tsne
    kwargs.setdefault('max_num_samples', 30)
    kwargs.setdefault('tsne', dict(perplexity=10.0, n_iter=400))
    kwargs.setdefault('analysis', ())
    return run_vis_tsne(DEMO_CONFIG, kwargs.pop('checkpoint',
                                                DEMO_CHECKPOINT),
                        work_dir=str(work_dir),
                        cfg_options=dict(digits_options),
                        show_progress=False, **kwargs)


def digits_sample(root, per_class=30, split='val'):
    """``(features, labels, image paths)`` of the first ``per_class`` images
    of each class folder of a ``write_digits`` folder.

    The images are taken in name order (as ``sampling='first'`` takes them)
    and the features are their own pixels, grey and box-averaged to 8x8
    (64-d, the scale of scikit-learn's digits): the same image gives the
    same row, and no model is involved.
    """
    import numpy as np
    from PIL import Image
    rows, labels, images = [], [], []
    for label in range(10):
        folder = osp.join(str(root), split, str(label))
        names = sorted(n for n in os.listdir(folder)
                       if n.endswith('.png'))[:per_class]
        for name in names:
            path = osp.join(folder, name)
            with Image.open(path) as img:
                small = img.convert('L').resize((8, 8), Image.BOX)
            rows.append(np.asarray(small, np.float32).reshape(-1) / 16.0)
            labels.append(label)
            images.append(path)
    return np.stack(rows), labels, images


def make_features_run(work_dir, digits_root, per_class=30, **kwargs):
    """A real run directory made cheaply by ``run_features``: no model.

    The rows are ``digits_sample(digits_root, per_class)`` (300 by default,
    10 classes, images on disk so that thumbnails and exports work), laid
    out by t-SNE with perplexity 10 and 300 iterations unless ``kwargs`` say
    otherwise; no analysis steps. About three times faster than
    ``make_demo_run``, but such a run has no predictions, logits, loss or
    checkpoint, and its ``index`` column is the row position: tests of those
    need ``make_demo_run``.
    """
    from tsneviz.apis import run_features
    feats, labels, images = digits_sample(digits_root, per_class)
    kwargs.setdefault('tsne', dict(perplexity=10.0, n_iter=300))
    kwargs.setdefault('analysis', ())
    kwargs.setdefault('show_progress', False)
    return run_features(feats, labels=labels, images=images,
                        work_dir=str(work_dir), **kwargs)


@pytest.fixture(scope='session')
def features_run(tmp_path_factory, digits_root):
    """One shared ``make_features_run`` run, for tests that only read it.

    Tests that write into a run (analysis steps, exports recorded in
    run.json) make their own with ``make_features_run``.
    """
    return make_features_run(tmp_path_factory.mktemp('features') / 'work',
                             digits_root)
