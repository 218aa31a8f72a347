"""Train the demo model of configs/digits and keep its checkpoint.

Usage (from the repository root)::

    python tools/train_digits.py

writes scikit-learn's digits to ``data/digits`` if they are not there yet
(:func:`tsneviz.demo.write_digits`), trains
``configs/digits/resnet18-slim_digits.py`` with mmengine's Runner on the CPU
(about a minute on two cores) and copies the final Runner checkpoint (weights,
meta and message_hub; no optimizer state) to
``configs/digits/resnet18-slim_digits.pth``.
"""

import argparse
import os
import os.path as osp
import shutil
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_CONFIG = osp.join(REPO, 'configs', 'digits', 'resnet18-slim_digits.py')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train the digits demo model and keep its checkpoint.')
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help='config to train (default: the digits demo)')
    parser.add_argument('--data-root', default=None,
                        help="where the digits are written and read "
                        "(default: the config's data_root, data/digits)")
    parser.add_argument('--size', type=int, default=32,
                        help='side of the written images (default: 32)')
    parser.add_argument('--work-dir', default=None,
                        help="the Runner's work_dir (default: the config's)")
    parser.add_argument('--out', default=None,
                        help='where the final checkpoint is copied '
                        '(default: the config path with .pth)')
    parser.add_argument('--device', choices=['cpu', 'auto'], default='cpu',
                        help='cpu (default, reproducible) or auto (a GPU '
                        'when there is one)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.device == 'cpu':
        # before torch is imported: mmengine then builds everything on CPU
        os.environ['CUDA_VISIBLE_DEVICES'] = ''

    from mmengine.config import Config
    from mmengine.runner import Runner

    from tsneviz.demo import write_digits
    from tsneviz.errors import UserError

    if not osp.isfile(args.config):
        print(f'error: config not found: {args.config}', file=sys.stderr)
        return UserError.exit_code
    cfg = Config.fromfile(args.config)
    data_root = args.data_root or cfg.get('data_root', 'data/digits')
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(name) is not None:
            cfg[name].dataset.data_root = data_root
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    cfg.setdefault('work_dir', osp.join(
        'work_dirs', osp.splitext(osp.basename(args.config))[0]))
    out = args.out or osp.splitext(args.config)[0] + '.pth'

    try:
        counts = write_digits(data_root, size=args.size)
    except UserError as e:
        print(f'error: {e}', file=sys.stderr)
        return e.exit_code
    print(f'digits in {data_root}: {counts}')

    start = time.perf_counter()
    runner = Runner.from_cfg(cfg)
    runner.train()
    seconds = time.perf_counter() - start

    last = osp.join(runner.work_dir, 'last_checkpoint')
    with open(last) as f:
        ckpt = f.read().strip()
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    shutil.copyfile(ckpt, out)

    top1 = runner.message_hub.get_info('val/accuracy/top1')
    if top1 is None:
        scalars = runner.message_hub.log_scalars
        if 'val/accuracy/top1' in scalars:
            top1 = scalars['val/accuracy/top1'].current()
    size_mb = osp.getsize(out) / 2**20
    print(f'trained in {seconds:.1f} s; val top-1: {top1}; '
          f'checkpoint {out} ({size_mb:.2f} MiB)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
