"""Tests for tsneviz.checkpoint on real mmengine checkpoints and hostile files.

The realistic checkpoint comes from an mmengine Runner that really trains for
two iterations, in a child process: a Runner leaves process-wide state behind
(the default registry scope, the current logger and visualizer) that would
leak into other tests.
"""

import hashlib
import json
import logging
import os
import pickle
import struct
import subprocess
import sys
import uuid
import zipfile

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.model import BaseModel
from torch import nn

from tsneviz.checkpoint import (
    checkpoint_dataset_meta,
    file_sha256,
    load_checkpoint,
    load_weights,
)
from tsneviz.errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES = ('cat', 'dog', 'bird')


class TinyNet(BaseModel):
    """Conv, BatchNorm and Linear: parameters and buffers, as in a ResNet."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Linear(4, len(CLASSES))

    def forward(self, inputs, labels=None, mode='tensor'):
        feats = self.bn(self.conv(inputs)).mean(dim=(2, 3))
        logits = self.head(feats)
        if mode == 'loss':
            return {'loss': nn.functional.cross_entropy(logits, labels)}
        return logits


class RandomImages(torch.utils.data.Dataset):
    metainfo = {'classes': CLASSES}

    def __len__(self):
        return 4

    def __getitem__(self, index):
        g = torch.Generator().manual_seed(index)
        return {
            'inputs': torch.randn(3, 8, 8, generator=g),
            'labels': torch.tensor(index % len(CLASSES))
        }


def train_and_save(work_dir):
    """Train TinyNet for two iterations and let CheckpointHook save it."""
    from mmengine.runner import Runner

    runner = Runner(
        model=TinyNet(),
        work_dir=work_dir,
        experiment_name='tiny',
        train_dataloader=dict(
            dataset=RandomImages(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            num_workers=0,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=2),
        default_hooks=dict(
            checkpoint=dict(
                type='CheckpointHook', interval=2, by_epoch=False)),
        randomness=dict(seed=0),
        default_scope='mmengine',
        log_level='WARNING')
    runner.train()
    # The trained weights, in a file that needs no trust at all.
    torch.save(
        {k: v.clone()
         for k, v in runner.model.state_dict().items()},
        os.path.join(work_dir, 'expected_state.pt'))


def fresh_model(seed):
    torch.manual_seed(seed)
    return TinyNet()


def assert_same_weights(model, state):
    got = model.state_dict()
    assert sorted(got) == sorted(state)
    for key, value in state.items():
        assert torch.equal(got[key], value), key


@pytest.fixture(scope='module')
def runner_checkpoint(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('runner')
    code = ('import importlib.util, sys\n'
            'spec = importlib.util.spec_from_file_location("t", sys.argv[1])\n'
            'mod = importlib.util.module_from_spec(spec)\n'
            'spec.loader.exec_module(mod)\n'
            'mod.train_and_save(sys.argv[2])\n')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [REPO, os.environ.get('PYTHONPATH')])))
    done = subprocess.run(
        [sys.executable, '-c', code, __file__,
         str(work_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    path = work_dir / 'iter_2.pth'
    expected = torch.load(work_dir / 'expected_state.pt', weights_only=True)
    return path, expected


@pytest.fixture
def logged():
    """An MMLogger and the messages it receives (it does not propagate)."""
    logger = MMLogger.get_instance(f'tsneviz-test-{uuid.uuid4().hex}')
    messages = []
    # mmengine also logs registry look-ups at debug level to the current
    # logger; only the warnings are about weights.
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger.addHandler(handler)
    yield logger, messages
    logger.removeHandler(handler)


def write_malicious(path, marker, legacy=False):
    # The classic attack: pickle calls os.makedirs(marker) when loading.
    class Payload:

        def __reduce__(self):
            return os.makedirs, (str(marker), )

    state = fresh_model(0).state_dict()
    torch.save({'state_dict': state, 'meta': {'x': Payload()}},
               path,
               _use_new_zipfile_serialization=not legacy)


# 1. A real mmengine checkpoint ---------------------------------------------


def test_plain_torch_load_refuses_a_real_runner_checkpoint(runner_checkpoint):
    path, _ = runner_checkpoint
    # The reason this module exists: torch's default refuses it outright.
    # torch's allowlist is process-wide: whatever an earlier test (or a
    # library) added would decide this result, so the test empties it.
    allowed = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    try:
        with pytest.raises(pickle.UnpicklingError,
                           match='Weights only load'):
            torch.load(path)
    finally:
        torch.serialization.add_safe_globals(allowed)
    assert set(torch.serialization.get_safe_globals()) == set(allowed)


def test_runner_checkpoint_loads_safely_and_restores_exact_weights(
        runner_checkpoint):
    path, expected = runner_checkpoint
    allowed_before = set(torch.serialization.get_safe_globals())

    checkpoint = load_checkpoint(path)

    # The allowlist applies to this load only, not to the whole process.
    assert set(torch.serialization.get_safe_globals()) == allowed_before
    assert {'meta', 'state_dict', 'message_hub'} <= set(checkpoint)
    buffers = checkpoint['message_hub']['log_scalars']
    assert isinstance(buffers['train/loss'], HistoryBuffer)
    assert np.isfinite(buffers['train/loss'].mean())
    assert checkpoint['meta']['iter'] == 2
    assert checkpoint_dataset_meta(checkpoint)['classes'] == list(CLASSES)

    model = fresh_model(seed=123)
    assert not torch.equal(model.conv.weight, expected['conv.weight'])
    result = load_weights(model, checkpoint)
    assert result == {'missing_keys': [], 'unexpected_keys': [],
                      'mismatched_keys': []}
    assert_same_weights(model, expected)


def test_numpy_values_in_meta_load_with_their_types(runner_checkpoint,
                                                    tmp_path):
    path, expected = runner_checkpoint
    checkpoint = torch.load(path, weights_only=False)
    checkpoint['meta'].update(
        loss=np.float64(1.0),
        step=np.int64(7),
        half=np.float16(0.5),
        flag=np.bool_(True),
        hist=np.arange(6, dtype=np.int32).reshape(2, 3),
        mean=np.array([0.1, 0.2], dtype=np.float32),
        names=np.array(['a', 'bc']))
    out = tmp_path / 'numpy_meta.pth'
    torch.save(checkpoint, out)

    meta = load_checkpoint(out)['meta']

    assert type(meta['loss']) is np.float64 and meta['loss'] == 1.0
    assert type(meta['step']) is np.int64 and meta['step'] == 7
    assert type(meta['half']) is np.float16 and meta['half'] == 0.5
    assert meta['flag'] is np.True_
    np.testing.assert_array_equal(meta['hist'], np.arange(6).reshape(2, 3))
    assert meta['hist'].dtype == np.int32
    np.testing.assert_array_equal(meta['mean'],
                                  np.array([0.1, 0.2], dtype=np.float32))
    assert meta['mean'].dtype == np.float32
    assert list(meta['names']) == ['a', 'bc']


def test_config_dict_in_meta_loads(tmp_path):
    from mmengine.config import ConfigDict
    out = tmp_path / 'cfg.pth'
    torch.save({'state_dict': {}, 'meta': {'cfg': ConfigDict(a={'b': 1})}},
               out)
    cfg = load_checkpoint(out)['meta']['cfg']
    assert isinstance(cfg, ConfigDict) and cfg.a.b == 1


# 2. Malicious checkpoints ---------------------------------------------------


@pytest.mark.parametrize('legacy', [False, True], ids=['zip', 'legacy'])
def test_malicious_checkpoint_is_refused_without_running_it(tmp_path, legacy):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    write_malicious(path, marker, legacy)

    with pytest.raises(UserError) as caught:
        load_checkpoint(path)

    message = str(caught.value)
    assert 'os.makedirs' in message
    assert 'it could run code when unpickled' in message
    assert '--trust-checkpoint' in message
    assert '\n' not in message
    assert not marker.exists()


def test_trust_really_unpickles_everything(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    write_malicious(path, marker)

    checkpoint = load_checkpoint(path, trust=True)

    assert marker.is_dir()
    assert 'state_dict' in checkpoint


def test_getattr_is_allowed_only_for_history_buffer_methods(tmp_path):
    # HistoryBuffer needs getattr(HistoryBuffer, 'mean'); a general getattr
    # would let a file reach any attribute of any allowed object.
    class Reach:

        def __reduce__(self):
            return getattr, (HistoryBuffer, '__init__')

    path = tmp_path / 'getattr.pth'
    torch.save({'state_dict': {}, 'meta': {'x': Reach()}}, path)

    with pytest.raises(UserError) as caught:
        load_checkpoint(path)
    assert 'builtins.getattr' in str(caught.value)
    assert 'HistoryBuffer.__init__' in str(caught.value)
    assert '--trust-checkpoint' in str(caught.value)


def test_object_arrays_are_refused(tmp_path):
    path = tmp_path / 'objects.pth'
    torch.save({'state_dict': {}, 'meta': {'x': np.array([{}, None])}}, path)
    with pytest.raises(UserError, match='ObjectDType.*--trust-checkpoint'):
        load_checkpoint(path)


# 3. State dict layouts and key mismatches ----------------------------------


@pytest.mark.parametrize('layout', ['mmengine', 'bare', 'ddp'])
def test_state_dict_layouts_load_exact_weights(layout, logged):
    logger, messages = logged
    state = fresh_model(1).state_dict()
    checkpoint = {
        'mmengine': {'state_dict': state, 'meta': {}},
        'bare': state,
        'ddp': {f'module.{k}': v for k, v in state.items()},
    }[layout]
    model = fresh_model(2)

    result = load_weights(model, checkpoint, logger=logger)

    assert result == {'missing_keys': [], 'unexpected_keys': [],
                      'mismatched_keys': []}
    assert_same_weights(model, state)
    assert messages == []


def test_missing_and_unexpected_keys_are_returned_and_logged(logged):
    logger, messages = logged
    source = fresh_model(1).state_dict()
    state = {k: v for k, v in source.items() if not k.startswith('head.')}
    state['neck.weight'] = torch.zeros(2)
    model = fresh_model(2)
    head_before = model.head.weight.clone()

    result = load_weights(model, {'state_dict': state}, logger=logger)

    assert result == {
        'missing_keys': ['head.weight', 'head.bias'],
        'unexpected_keys': ['neck.weight'],
        'mismatched_keys': [],
    }
    assert torch.equal(model.conv.weight, source['conv.weight'])
    assert torch.equal(model.head.weight, head_before)
    log = '\n'.join(messages)
    for key in ('head.weight', 'head.bias', 'neck.weight'):
        assert key in log


def test_old_checkpoint_without_bn_counter_is_not_reported_missing(logged):
    logger, _ = logged
    state = fresh_model(1).state_dict()
    del state['bn.num_batches_tracked']
    result = load_weights(fresh_model(2), state, logger=logger)
    assert result == {'missing_keys': [], 'unexpected_keys': [],
                      'mismatched_keys': []}


def test_checkpoint_of_another_model_is_a_user_error(logged):
    logger, _ = logged
    other = {'backbone.conv.weight': torch.zeros(1), 'fc.bias': torch.zeros(1)}
    model = fresh_model(2)
    n_model_keys = len(model.state_dict())

    with pytest.raises(UserError) as caught:
        load_weights(model, {'state_dict': other}, logger=logger)

    message = str(caught.value)
    assert 'none of its 2 weight names' in message
    assert f'model\'s {n_model_keys}' in message
    assert '\n' not in message


# 4. Missing and unreadable files --------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / 'nope.pth'
    with pytest.raises(UserError) as caught:
        load_checkpoint(path)
    assert str(caught.value) == (f'checkpoint not found: {path}; '
                                 'pass an existing file to --checkpoint')


def _garbage(kind, tmp_path, real):
    path = tmp_path / f'{kind}.pth'
    if kind == 'random':
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == 'text':
        path.write_text('model:\n  type: ResNet\n')
    elif kind == 'empty':
        path.write_bytes(b'')
    elif kind == 'truncated':
        data = real.read_bytes()
        path.write_bytes(data[:len(data) // 2])
    elif kind == 'zip':
        with zipfile.ZipFile(path, 'w') as archive:
            archive.writestr('readme.txt', 'hello')
    elif kind == 'tensor':
        torch.save(torch.zeros(3), path)
    elif kind == 'directory':
        path.mkdir()
    return path


@pytest.mark.parametrize('kind', [
    'random', 'text', 'empty', 'truncated', 'zip', 'tensor', 'directory'
])
def test_unreadable_file_is_a_one_line_user_error(kind, tmp_path,
                                                  runner_checkpoint):
    path = _garbage(kind, tmp_path, runner_checkpoint[0])
    with pytest.raises(UserError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert '\n' not in message
    assert str(path) in message
    # Nothing here asked for an unsafe global, so trust would not help.
    assert '--trust-checkpoint' not in message


def test_text_file_says_it_is_text_not_a_key_error(tmp_path):
    path = _garbage('text', tmp_path, None)
    with pytest.raises(UserError, match='is a text file') as caught:
        load_checkpoint(path)
    assert "'model: type: ResNet'" in str(caught.value)
    assert 'KeyError' not in str(caught.value)


def test_git_lfs_pointer_says_to_fetch_the_weights(tmp_path):
    path = tmp_path / 'model.pth'
    path.write_text('version https://git-lfs.github.com/spec/v1\n'
                    'oid sha256:' + '0' * 64 + '\nsize 4600000\n')
    with pytest.raises(UserError, match='Git LFS pointer.*git lfs pull'):
        load_checkpoint(path)


def write_safetensors(path, tensors):
    """The safetensors layout (a JSON header, then raw little-endian data),
    written by hand: the safetensors package is not a dependency."""
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype='<f4').tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(array.shape),
                        'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b' ' * (-len(text) % 8)
    path.write_bytes(struct.pack('<Q', len(text)) + text + b''.join(blobs))


@pytest.mark.parametrize('trust', [False, True])
def test_safetensors_file_is_named_with_how_to_convert(tmp_path, trust):
    path = tmp_path / 'model.safetensors'
    write_safetensors(path, {'conv.weight': np.ones((4, 3, 3, 3))})
    with pytest.raises(UserError, match='is a safetensors file') as caught:
        load_checkpoint(path, trust=trust)
    assert 'torch.save(st.load_file(' in str(caught.value)
    assert '\n' not in str(caught.value)


def zip_bomb(path, inflated):
    """A real torch zip checkpoint plus a deflated member of ``inflated``
    zero bytes: a few kilobytes on disk."""
    torch.save({'state_dict': {'w': torch.zeros(2)}}, path)
    with zipfile.ZipFile(path, 'a', compression=zipfile.ZIP_DEFLATED) as z:
        prefix = z.namelist()[0].split('/')[0]
        with z.open(f'{prefix}/data/99', 'w', force_zip64=True) as member:
            chunk = bytes(1 << 20)
            for _ in range(inflated >> 20):
                member.write(chunk)


@pytest.mark.parametrize('trust', [False, True])
def test_zip_member_inflating_past_the_cap_is_refused(tmp_path, monkeypatch,
                                                      trust):
    import tsneviz.checkpoint as checkpoint
    path = tmp_path / 'bomb.pth'
    zip_bomb(path, 32 << 20)
    assert path.stat().st_size < 1 << 20
    # The real floor is 64 MiB; a lower one keeps the test file small.
    monkeypatch.setattr(checkpoint, 'INFLATE_FLOOR', 1 << 20)
    with pytest.raises(UserError, match='zip bomb') as caught:
        load_checkpoint(path, trust=trust)
    assert f'{32 << 20} bytes' in str(caught.value) or \
        str(32 << 20) in str(caught.value)
    # an ordinary checkpoint of the same content passes the same check
    plain = tmp_path / 'plain.pth'
    torch.save({'state_dict': {'w': torch.zeros(2)}}, plain)
    assert load_checkpoint(plain)['state_dict']['w'].shape == (2, )


def test_truncated_zip_checkpoint_is_named_damaged(tmp_path,
                                                   runner_checkpoint):
    data = runner_checkpoint[0].read_bytes()
    path = tmp_path / 'cut.pth'
    path.write_bytes(data[:len(data) - 100])
    with pytest.raises(UserError, match='damaged or truncated zip'):
        load_checkpoint(path)


def test_all_weights_of_another_shape_is_an_error_not_random_weights(logged):
    logger, _ = logged
    wide = {k: torch.zeros(*(d + 1 for d in v.shape))
            for k, v in fresh_model(1).state_dict().items()
            if v.ndim > 0}
    model = fresh_model(2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(UserError, match='have other shapes') as caught:
        load_weights(model, {'state_dict': wide}, logger=logger)
    assert "'bn.bias' is (5,) in the checkpoint, (4,) in the model" in \
        str(caught.value)
    assert_same_weights(model, before)


def test_some_weights_of_another_shape_are_reported_and_warned(logged):
    logger, messages = logged
    source = fresh_model(1).state_dict()
    state = dict(source, **{'head.weight': torch.zeros(7, 4),
                            'head.bias': torch.zeros(7)})
    model = fresh_model(2)
    head_before = model.head.weight.clone()
    result = load_weights(model, {'state_dict': state}, logger=logger)
    assert result['mismatched_keys'] == ['head.bias', 'head.weight']
    assert torch.equal(model.conv.weight, source['conv.weight'])
    assert torch.equal(model.head.weight, head_before)
    assert any('NOT loaded' in m and 'head.weight' in m for m in messages)


# 5. Dataset meta and hashing ------------------------------------------------


def test_dataset_meta_from_both_generations():
    mmpretrain = {'meta': {'dataset_meta': {'classes': ('a', 'b')}}}
    mmcls = {'meta': {'CLASSES': ['x', 'y', 'z']}}
    assert checkpoint_dataset_meta(mmpretrain) == {'classes': ['a', 'b']}
    assert checkpoint_dataset_meta(mmcls) == {'classes': ['x', 'y', 'z']}
    assert checkpoint_dataset_meta({'meta': {'epoch': 3}}) == {}
    assert checkpoint_dataset_meta({'state_dict': {}}) == {}
    assert checkpoint_dataset_meta({'meta': {'CLASSES': 'a.txt'}}) == {}


def test_file_sha256_matches_hashlib(tmp_path):
    data = np.random.default_rng(1).bytes(3 * 1000 + 7)
    path = tmp_path / 'blob.bin'
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    # Chunk boundaries must not change the digest.
    assert file_sha256(path, chunk=1000) == hashlib.sha256(data).hexdigest()
