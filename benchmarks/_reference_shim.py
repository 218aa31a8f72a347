"""Run mmpretrain's own ``vis_tsne.py`` (from the installed wheel) as is.

Usage::

    python benchmarks/_reference_shim.py --trusted-checkpoint CKPT \
        REFERENCE_SCRIPT -- ARGS...

The reference script is not copied: it is executed with
``runpy.run_path(..., run_name='__main__')`` after two run-time patches that
it needs on today's libraries, and only in this process:

* scikit-learn renamed ``TSNE(n_iter=...)`` to ``max_iter`` in 1.5 and
  removed ``n_iter`` in 1.7. ``sklearn.manifold.TSNE`` is replaced by a
  factory that maps ``n_iter`` to ``max_iter`` (the reference does
  ``from sklearn.manifold import TSNE`` when it runs, so it picks it up).
* torch >= 2.6 defaults ``torch.load`` to ``weights_only=True``, which
  refuses real mmengine checkpoints (numpy scalars, HistoryBuffer in the
  message hub). For exactly the checkpoint named by ``--trusted-checkpoint``
  (the benchmark's own file) ``weights_only=False`` is passed; any other
  file keeps torch's default.
"""
import argparse
import functools
import os
import os.path as osp
import runpy
import sys


def _patch_sklearn_tsne() -> None:
    import sklearn.manifold

    original = sklearn.manifold.TSNE
    if getattr(original, '_bench_n_iter_shim', False):
        return

    @functools.wraps(original, updated=())
    def TSNE(*args, n_iter=None, **kwargs):  # noqa: N802 (class stand-in)
        if n_iter is not None:
            if 'max_iter' in kwargs:
                raise TypeError('pass n_iter or max_iter, not both')
            kwargs['max_iter'] = n_iter
        return original(*args, **kwargs)

    TSNE._bench_n_iter_shim = True
    sklearn.manifold.TSNE = TSNE


def _patch_torch_load(trusted: str) -> None:
    import torch

    original = torch.load
    trusted = osp.realpath(trusted)

    @functools.wraps(original)
    def load(f, *args, **kwargs):
        if isinstance(f, (str, os.PathLike)) and \
                osp.realpath(os.fspath(f)) == trusted:
            kwargs.setdefault('weights_only', False)
        return original(f, *args, **kwargs)

    torch.load = load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--trusted-checkpoint', required=True,
                        help='the one checkpoint loaded with '
                        'weights_only=False')
    parser.add_argument('reference', help="path of mmpretrain's vis_tsne.py")
    parser.add_argument('args', nargs=argparse.REMAINDER,
                        help='arguments for the reference, after --')
    opts = parser.parse_args()
    args = opts.args[1:] if opts.args[:1] == ['--'] else opts.args
    _patch_sklearn_tsne()
    _patch_torch_load(opts.trusted_checkpoint)
    sys.argv = [opts.reference] + args
    runpy.run_path(opts.reference, run_name='__main__')


if __name__ == '__main__':
    main()
