"""Shared fixtures: real small data made at test time.

scikit-learn's bundled digits are written once per session as an mmpretrain
``CustomDataset`` folder; the demo config and its committed checkpoint (a
slim ResNet-18 trained on them by tools/train_digits.py) are the tiny
trained model.
"""
import os
import os.path as osp
import warnings

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_CONFIG = osp.join(REPO, 'configs', 'digits', 'resnet18-slim_digits.py')
DEMO_CHECKPOINT = osp.join(REPO, 'configs', 'digits',
                           'resnet18-slim_digits.pth')
MMPRETRAIN_CONFIGS = None

warnings.filterwarnings('ignore', message='pkg_resources is deprecated')
warnings.filterwarnings('ignore', message='Fail to import ``MultiScale')


def mmpretrain_config(relative: str) -> str:
    """Path of a config shipped inside the installed mmpretrain wheel."""
    import mmpretrain
    return osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'configs',
                    relative)


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
