"""Multi-process extraction: the process group of a launcher."""
import contextlib

from tsneviz.errors import UserError

#: The ``--launcher`` values (mmengine's, as in mmpretrain's tools).
LAUNCHERS = ('none', 'pytorch', 'slurm')


def check_launcher(launcher: str) -> None:
    """Refuse an unknown ``--launcher``, listing the valid ones."""
    if launcher not in LAUNCHERS:
        raise UserError(f'unknown --launcher {launcher!r}; choose one of '
                        f'{", ".join(LAUNCHERS)}')


@contextlib.contextmanager
def distributed(launcher: str, device: str):
    """The process group of a launcher for the body of a run.

    NCCL on GPUs, gloo on CPUs. A group started here is destroyed when the
    body ends, however it ends: a rank that exits with gloo's threads still
    running can abort in the interpreter's shutdown ("terminate called
    without an active exception").

    Args:
        launcher (str): ``'pytorch'`` (torchrun) or ``'slurm'``;
            ``'none'`` does nothing.
        device (str): The device the ranks run on.

    Examples:
        >>> with distributed('pytorch', 'cpu'):  # under torchrun
        ...     run()
    """
    import torch.distributed as torch_dist
    from mmengine import dist
    if launcher == 'none' or dist.is_distributed():
        yield
        return
    if device.startswith('cuda'):
        dist.init_dist(launcher, backend='nccl')
    elif launcher == 'pytorch':
        # mmengine's launcher always binds a CUDA device; on CPU the gloo
        # group is started from torchrun's environment directly, and
        # mmengine's dist helpers work on it as on any default group.
        torch_dist.init_process_group(backend='gloo')
    else:
        raise UserError(f'--launcher {launcher} needs CUDA devices; on CPU '
                        'use torchrun (tools/dist_vis_tsne.sh)')
    try:
        yield
    finally:
        torch_dist.destroy_process_group()
