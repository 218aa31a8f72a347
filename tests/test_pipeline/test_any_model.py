"""Everything after extraction for a plain matrix or any PyTorch model."""
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
import torchvision
from sklearn.datasets import load_digits
from torchvision import transforms

from tests.conftest import REPO
from tsneviz.apis import run_features, run_module
from tsneviz.errors import UserError
from tsneviz.rundir import Run

FAST = dict(perplexity=10.0, n_iter=300)


@pytest.fixture(scope='module')
def digits_matrix(tmp_path_factory):
    X, y = load_digits(return_X_y=True)
    folder = tmp_path_factory.mktemp('matrix')
    np.save(folder / 'feats.npy', X[:200])
    names = [f'digit{v}' for v in y[:200]]
    (folder / 'labels.txt').write_text('\n'.join(names))
    return folder, X[:200], y[:200]


def test_feature_matrix_with_class_names(digits_matrix, tmp_path):
    folder, X, y = digits_matrix
    run_dir = run_features(str(folder / 'feats.npy'),
                           labels=str(folder / 'labels.txt'),
                           work_dir=str(tmp_path), tsne=FAST,
                           analysis=('clusters',), show_progress=False)
    run = Run(run_dir)
    assert run.classes == [f'digit{i}' for i in range(10)]
    assert run.labels.tolist() == y.tolist()
    np.testing.assert_array_equal(run.features(), X.astype(np.float32))
    assert run.manifest['results']['feat_0']['knn_accuracy_embedding'] > 0.9
    assert not run.has_predictions  # no model, no predictions made up
    assert osp.isfile(osp.join(run_dir, 'clusters.csv'))


@pytest.mark.parametrize('case, needle', [
    ('rows', 'the features have 200 rows but the labels has 199 labels'),
    ('nan', 'NaN or Inf values in 1 of 200 rows'),
    ('images', 'has 3 images; give one image per row'),
])
def test_bad_matrices_are_refused(case, needle, digits_matrix, tmp_path):
    folder, X, y = digits_matrix
    feats, labels, images = X.copy(), list(y), None
    if case == 'rows':
        labels = labels[:-1]
    elif case == 'nan':
        feats[7, 3] = np.nan
    else:
        images = ['a.png', 'b.png', 'c.png']
    with pytest.raises(UserError, match=needle):
        run_features(feats, labels=labels, images=images,
                     work_dir=str(tmp_path / 'w'), tsne=FAST)
    assert not (tmp_path / 'w').exists() or \
        not list((tmp_path / 'w').glob('tsne_*'))


@pytest.mark.slow
def test_cli_features_and_its_errors(digits_matrix, tmp_path):
    folder, X, y = digits_matrix
    tool = osp.join(REPO, 'tools', 'vis_tsne.py')
    ok = subprocess.run(
        [sys.executable, tool, '--features', str(folder / 'feats.npy'),
         '--labels', str(folder / 'labels.txt'), '--work-dir',
         str(tmp_path), '--perplexity', '10', '--n-iter', '300',
         '--analysis'], capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert osp.isfile(osp.join(ok.stdout.strip().splitlines()[-1],
                               'run.json'))
    np.save(tmp_path / 'inf.npy', np.array([[1.0, np.inf], [0.0, 1.0],
                                            [2.0, 2.0]]))
    np.save(tmp_path / 'short.npy', np.ones((3, 2)))
    for name, args, needle in [
            ('inf.npy', [], 'NaN or Inf'),
            ('short.npy', ['--labels', str(folder / 'labels.txt')],
             'the features have 3 rows but')]:
        proc = subprocess.run(
            [sys.executable, tool, '--features', str(tmp_path / name),
             *args], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2
        assert proc.stderr.strip().startswith('error: ')
        assert needle in proc.stderr and 'Traceback' not in proc.stderr


def test_any_pytorch_model_and_image_folder(digits_root, tmp_path):
    torch.manual_seed(0)
    folder = torchvision.datasets.ImageFolder(
        osp.join(digits_root, 'val'), transform=transforms.ToTensor())
    subset = torch.utils.data.Subset(folder, list(range(0, 540, 4)))
    subset.classes, subset.samples = folder.classes, \
        [folder.samples[i] for i in subset.indices]
    model = torchvision.models.resnet18(num_classes=10)
    run_dir = run_module(model, subset, 'layer3', work_dir=str(tmp_path),
                         tsne=FAST, analysis=('neighbors',),
                         output_is_logits=True, show_progress=False)
    run = Run(run_dir)
    assert run.keys == ['feat_layer3']
    assert run.features().shape == (135, 256)
    assert run.classes == [str(i) for i in range(10)]
    assert run.image_paths[0].endswith('.png')
    assert run.has_predictions  # declared logits: loss and predictions
    # the hooked features equal the module's own output, pooled
    x = torch.stack([subset[i][0] for i in range(4)])
    with torch.no_grad():
        m = model
        h = m.layer3(m.layer2(m.layer1(m.maxpool(m.relu(m.bn1(
            m.conv1(x)))))))
    np.testing.assert_allclose(run.features()[:4], h.mean((2, 3)).numpy(),
                               atol=1e-5)
    with pytest.raises(UserError, match='shuffles'):
        run_module(model, torch.utils.data.DataLoader(subset, shuffle=True),
                   'layer3', work_dir=str(tmp_path))
    with pytest.raises(UserError, match='name a module|no backbone'):
        run_module(model, subset, None, work_dir=str(tmp_path))
