"""Keep a checkpoint of each of the first epochs of the digits demo model.

Usage (from the repository root)::

    python tools/train_digits_checkpoints.py

trains ``configs/digits/resnet18-slim_digits.py`` as
``tools/train_digits.py`` does (same data, seed and schedule), but stops
after ``--epochs`` epochs (default 3) and keeps the weights after every
epoch as ``configs/digits/checkpoints/epoch_<n>.pth``: the checkpoints
along one training run that ``tools/compare.py`` follows (see "Following
training across checkpoints" in the README) and that its tests use.

To keep the files small, only the weights are kept, floating-point ones as
float16 (loading casts them back to the model's float32), with the meta
(epoch, iteration, dataset classes); no optimizer, scheduler or message
hub. Validation is skipped: the runs made from the checkpoints measure it.
"""

import argparse
import os
import os.path as osp
import sys
import tempfile
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_CONFIG = osp.join(REPO, 'configs', 'digits', 'resnet18-slim_digits.py')
DEFAULT_OUT = osp.join(REPO, 'configs', 'digits', 'checkpoints')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train the digits demo model for a few epochs and keep '
        'a small checkpoint of each epoch.')
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help='config to train (default: the digits demo)')
    parser.add_argument('--epochs', type=int, default=3,
                        help='epochs to train and keep (default: 3)')
    parser.add_argument('--data-root', default=None,
                        help="where the digits are written and read "
                        "(default: the config's data_root, data/digits)")
    parser.add_argument('--out', default=DEFAULT_OUT,
                        help='folder of the epoch_<n>.pth files (default: '
                        'configs/digits/checkpoints)')
    return parser.parse_args(argv)


def shrink_checkpoint(src: str, dst: str) -> int:
    """Weights (floats as float16) and meta of ``src``, saved to ``dst``.

    Returns:
        int: Size of ``dst`` in bytes.
    """
    import torch

    from tsneviz.checkpoint import load_checkpoint
    from tsneviz.rundir import atomic_write

    ckpt = load_checkpoint(src)
    state = {k: v.half() if v.is_floating_point() else v
             for k, v in ckpt['state_dict'].items()}
    meta = ckpt.get('meta', {})
    keep = dict(epoch=meta.get('epoch'), iter=meta.get('iter'),
                seed=meta.get('seed'),
                dataset_meta=dict(meta.get('dataset_meta') or {}))
    atomic_write(dst, lambda f: torch.save(
        dict(meta=keep, state_dict=state), f))
    return osp.getsize(dst)


def main(argv=None):
    args = parse_args(argv)
    # before torch is imported: mmengine then builds everything on CPU,
    # reproducibly (as tools/train_digits.py does by default)
    os.environ['CUDA_VISIBLE_DEVICES'] = ''

    from mmengine.config import Config
    from mmengine.runner import Runner

    from tsneviz.demo import write_digits
    from tsneviz.errors import UserError

    if args.epochs < 1:
        print('error: --epochs must be at least 1', file=sys.stderr)
        return UserError.exit_code
    cfg = Config.fromfile(args.config)
    data_root = args.data_root or cfg.get('data_root', 'data/digits')
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(name) is not None:
            cfg[name].dataset.data_root = data_root
    try:
        counts = write_digits(data_root)
    except UserError as e:
        print(f'error: {e}', file=sys.stderr)
        return e.exit_code
    print(f'digits in {data_root}: {counts}')

    # the config's own schedule (warm-up, cosine over its max_epochs), cut
    # after --epochs: these are the first epochs of the demo's training
    cfg.train_cfg = dict(by_epoch=True, max_epochs=args.epochs,
                         val_interval=args.epochs + 1)
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1,
                                        save_optimizer=False,
                                        save_param_scheduler=False)
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as work_dir:
        cfg.work_dir = work_dir
        start = time.perf_counter()
        Runner.from_cfg(cfg).train()
        seconds = time.perf_counter() - start
        for epoch in range(1, args.epochs + 1):
            name = f'epoch_{epoch}.pth'
            size = shrink_checkpoint(osp.join(work_dir, name),
                                     osp.join(args.out, name))
            print(f'{osp.join(args.out, name)} ({size / 2**20:.2f} MiB)')
    print(f'trained {args.epochs} epoch(s) in {seconds:.1f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
