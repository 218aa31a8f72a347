"""Read mmpretrain / mmengine checkpoints without trusting them by default.

A ``.pth`` file is a pickle, and unpickling can run any code the file names.
Since torch 2.6 ``torch.load`` refuses anything but tensors and plain
containers, which also refuses real mmengine checkpoints: their ``meta`` and
``message_hub`` hold numpy scalars and arrays and mmengine's ``HistoryBuffer``.
Rather than falling back to a full unpickle, :func:`load_checkpoint` keeps
torch's restricted unpickler and allows exactly those few harmless types (see
:func:`safe_globals`). Anything else is refused with the name of what the
file wanted, and only ``trust=True`` (``--trust-checkpoint``) unpickles it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import pickle
import re
import struct
import threading
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from tsneviz.errors import UserError

__all__ = [
    'check_checkpoint_file', 'checkpoint_dataset_meta', 'file_sha256',
    'load_checkpoint', 'load_weights', 'safe_globals'
]

# HistoryBuffer pickles its statistics registry as bound functions, which
# pickle writes as getattr(HistoryBuffer, 'mean'). These are the only
# attribute look-ups a checkpoint may ask for.
_HISTORY_BUFFER_METHODS = frozenset({'min', 'max', 'current', 'mean'})

# Where torch's weights-only unpickler names what it refused. The first two
# are refused globals; the last catches instances of a type it may not build.
_REFUSED_PATTERNS = (
    re.compile(r'GLOBAL (\S+) was not an allowed global'),
    re.compile(r'unsupported GLOBAL (\S+) whose module'),
    re.compile(r"(?:Can only build|Can only create new object)"
               r"[^<]*but got <class '([^']+)'>"),
)

_ANSI = re.compile(r'\x1b\[[0-9;]*m')

# torch.save stores zip members uncompressed, so a real checkpoint inflates
# to about its own size. A member that claims far more is a zip bomb (torch
# allocates the declared size before reading): refused above this ratio of
# inflated to compressed bytes, with a floor so that tiny members never
# trip it.
MAX_INFLATE_RATIO = 10
INFLATE_FLOOR = 64 << 20

# torch keeps the allowlist of torch.serialization.safe_globals in one
# process-wide set, and the context manager removes its entries on exit:
# one thread leaving it while another still unpickles makes the other
# refuse a HistoryBuffer it had just allowed. Loads that use it take turns.
_ALLOWLIST_LOCK = threading.Lock()


def _numpy_multiarray():
    # numpy 2 moved numpy.core to numpy._core; touching numpy.core there
    # warns, and numpy 1 has no numpy._core.
    core = getattr(np, '_core', None)
    return core.multiarray if core is not None else np.core.multiarray


def _history_buffer_getattr(obj, name, *default):
    """getattr that only hands out HistoryBuffer's statistics methods.

    A free ``getattr`` would let a pickle walk from any allowed object to
    function globals and builtins, so this stands in for ``builtins.getattr``.
    """
    from mmengine.logging.history_buffer import HistoryBuffer

    if obj is HistoryBuffer and name in _HISTORY_BUFFER_METHODS \
            and not default:
        return getattr(obj, name)
    owner = obj if isinstance(obj, type) else type(obj)
    wanted = re.sub(r'\s', '',
                    f'{owner.__module__}.{owner.__qualname__}.{name}')
    # Worded like torch's own refusal so that one parser names both.
    raise pickle.UnpicklingError(
        f'Unsupported global: GLOBAL builtins.getattr({wanted}) '
        'was not an allowed global by default.')


@functools.lru_cache(maxsize=1)
def safe_globals() -> tuple:
    """The types a checkpoint may contain beyond torch's own allowlist.

    Each entry is a class or function, or a ``(object, 'module.name')`` pair
    for a name under which pickle refers to the object (see
    :func:`torch.serialization.add_safe_globals`).

    Returns:
        tuple: Entries for :class:`torch.serialization.safe_globals`.

    Examples:
        >>> np.ndarray in safe_globals()
        True
        >>> with torch.serialization.safe_globals(list(safe_globals())):
        ...     ckpt = torch.load('epoch_1.pth', weights_only=True)
    """
    from mmengine.config import ConfigDict
    from mmengine.logging.history_buffer import HistoryBuffer

    multiarray = _numpy_multiarray()
    # Only plain value dtypes: the object dtype would let an array carry
    # arbitrary objects, and void/datetime dtypes are not needed.
    value_dtypes = {
        type(np.dtype(code))
        for code in np.typecodes['AllInteger'] + np.typecodes['AllFloat'] +
        '?SU'
    }
    entries = [
        np.dtype,
        np.ndarray,
        *sorted(value_dtypes, key=lambda t: t.__name__),
        HistoryBuffer,
        ConfigDict,
        (_history_buffer_getattr, 'builtins.getattr'),
    ]
    # Checkpoints written under numpy 1 name numpy.core.multiarray, those
    # under numpy 2 numpy._core.multiarray; accept both spellings.
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        entries.append((multiarray.scalar, f'{module}.scalar'))
        entries.append((multiarray._reconstruct, f'{module}._reconstruct'))
    return tuple(entries)


def _one_line(text: str, limit: int = 200) -> str:
    """Torch's error text, reduced to its core on one line."""
    text = _ANSI.sub('', text)
    if 'WeightsUnpickler error:' in text:
        text = text.rsplit('WeightsUnpickler error:', 1)[1]
    text = text.split('Check the documentation of torch.load')[0]
    text = ' '.join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + '...'


def _describe(error: Exception) -> str:
    text = _one_line(str(error))
    if isinstance(error, EOFError):
        return 'EOFError: the file is empty or truncated'
    return f'{type(error).__name__}: {text}' if text else type(error).__name__


def _refused_globals(message: str, path: str) -> list[str]:
    """Names of the globals torch refused, from its error and the file."""
    names = []
    for pattern in _REFUSED_PATTERNS:
        names += pattern.findall(_ANSI.sub('', message))
    try:
        # A static scan of the pickle: it names every refused global, not
        # only the first one the unpickler tripped over.
        with _ALLOWLIST_LOCK, \
                torch.serialization.safe_globals(list(safe_globals())):
            names += torch.serialization.get_unsafe_globals_in_checkpoint(
                path)
    except Exception:  # legacy (non-zip) files cannot be scanned
        pass
    return sorted(set(names))


def load_checkpoint(path: str | os.PathLike, trust: bool = False) -> dict:
    """Load a checkpoint onto the CPU, refusing code-running content.

    By default only tensors, plain containers and the types in
    :func:`safe_globals` are unpickled, so loading cannot run code.
    ``trust=True`` unpickles everything, which runs whatever the file asks
    for; use it only for files from a source you trust. Threads may load
    at once: the allowlisted loads take turns.

    Args:
        path: The ``.pth`` file.
        trust: Unpickle without restrictions (``--trust-checkpoint``).

    Returns:
        dict: The checkpoint, e.g. with ``state_dict`` and ``meta``.

    Raises:
        UserError: The file is missing, is not a torch checkpoint, is not a
            dict, or (without ``trust``) needs a type outside the allowlist.

    Examples:
        >>> ckpt = load_checkpoint('resnet18_8xb32_in1k.pth')
        >>> sorted(ckpt)
        ['meta', 'state_dict']
        >>> load_checkpoint('mine.pth', trust=True)  # runs the file's code
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise UserError(f'checkpoint not found: {path}; '
                        'pass an existing file to --checkpoint')
    if os.path.isdir(path):
        raise UserError(f'checkpoint is a directory: {path}; '
                        'pass a .pth file to --checkpoint')
    check_checkpoint_file(path)
    try:
        if trust:
            checkpoint = torch.load(
                path, map_location='cpu', weights_only=False)
        else:
            with _ALLOWLIST_LOCK, \
                    torch.serialization.safe_globals(list(safe_globals())):
                checkpoint = torch.load(
                    path, map_location='cpu', weights_only=True)
    except MemoryError:
        raise
    except Exception as error:
        # The file is the user's input, so anything torch raises while
        # reading it is about the file; say so in one line.
        refused = [] if trust else _refused_globals(str(error), path)
        if refused:
            which = 'which is' if len(refused) == 1 else 'which are'
            raise UserError(
                f'checkpoint {path} needs {", ".join(refused)}, {which} not '
                'on the list of types safe to load: it could run code when '
                'unpickled; if you trust this file, pass --trust-checkpoint'
            ) from None
        raise UserError(
            f'cannot read {path} as a PyTorch checkpoint '
            f'({_describe(error)}); pass a file saved by torch.save to '
            '--checkpoint') from None
    if not isinstance(checkpoint, dict):
        raise UserError(
            f'checkpoint {path} holds a {type(checkpoint).__name__}, not a '
            'dict of weights; pass a checkpoint saved from a state dict')
    # Returned as loaded: a bare state dict's _metadata (module versions)
    # must survive for load_weights.
    return checkpoint


def check_checkpoint_file(path: str) -> None:
    """Refuse, from its first bytes, a file torch cannot or must not load.

    Catches what torch reports obscurely (an empty or text file gives
    ``KeyError: 101``, a safetensors file an ``IndexError`` or a hint to
    install a package) and a zip whose members claim to inflate far past
    the file's size, which torch would allocate before reading.

    Args:
        path (str): The checkpoint file.

    Raises:
        UserError: Saying what the file is and what to pass instead.
    """
    size = os.path.getsize(path)
    if size == 0:
        raise UserError(f'checkpoint {path} is empty; pass the .pth file '
                        'saved by training (torch.save)')
    with open(path, 'rb') as f:
        head = f.read(4096)
    if head.startswith(b'PK\x03\x04'):
        _check_zip(path, size)
        return
    if _is_safetensors(head, size):
        raise UserError(
            f'checkpoint {path} is a safetensors file; tsneviz reads '
            'PyTorch checkpoints: convert it with python -c "import torch, '
            'safetensors.torch as st; torch.save(st.load_file(\'IN\'), '
            '\'OUT.pth\')" and pass OUT.pth')
    if head.startswith(b'version https://git-lfs'):
        raise UserError(f'checkpoint {path} is a Git LFS pointer, not the '
                        'weights; fetch them with git lfs pull')
    if head[:1] != b'\x80' and _looks_like_text(head):
        start = ' '.join(head[:40].decode('utf-8', 'replace').split())
        raise UserError(f'checkpoint {path} is a text file (it starts with '
                        f'{start!r}), not a PyTorch checkpoint; pass the '
                        '.pth file saved by training (torch.save)')


def _check_zip(path: str, size: int) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise UserError(f'checkpoint {path} is a damaged or truncated zip '
                        f'archive ({error}); download or copy it again'
                        ) from None
    cap = max(MAX_INFLATE_RATIO * size, INFLATE_FLOOR)
    inflated = sum(member.file_size for member in members)
    if inflated > cap:
        biggest = max(members, key=lambda m: m.file_size)
        raise UserError(
            f'checkpoint {path} is refused: its zip members claim '
            f'{inflated} bytes once inflated ({biggest.filename}: '
            f'{biggest.file_size}) from a {size}-byte file, more than '
            f'{MAX_INFLATE_RATIO}x its size (torch.save does not compress);'
            ' it looks like a zip bomb')


def _is_safetensors(head: bytes, size: int) -> bool:
    # 8-byte little-endian header length, then a JSON object.
    if len(head) < 10 or head[8:9] != b'{':
        return False
    (length, ) = struct.unpack('<Q', head[:8])
    if length + 8 > size:
        return False
    if length + 8 <= len(head):
        try:
            json.loads(head[8:8 + length])
        except ValueError:
            return False
    return True


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode('utf-8')
    except UnicodeDecodeError:
        # a multi-byte character cut at the 4096-byte boundary
        try:
            text = head[:-3].decode('utf-8')
        except UnicodeDecodeError:
            return False
    return all(c.isprintable() or c in '\t\r\n\f' for c in text)


def _state_dict_of(checkpoint: Mapping) -> Mapping:
    # The same choice mmengine's _load_checkpoint_to_model makes.
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, Mapping):
        raise UserError(
            f"checkpoint 'state_dict' is a {type(state_dict).__name__}, not "
            'a dict of weights; pass an mmpretrain/mmengine checkpoint')
    return state_dict


def load_weights(model: torch.nn.Module,
                 checkpoint: Mapping,
                 logger: logging.Logger | None = None) -> dict:
    """Copy a checkpoint's weights into ``model``, tolerating mismatches.

    Accepts an mmengine checkpoint (weights under ``state_dict``), a bare
    state dict, and keys with DDP's ``module.`` prefix. Loading is not
    strict, so a checkpoint that covers only part of the model still loads;
    the keys that did not match are logged as a warning and returned.
    ``num_batches_tracked`` counters of BatchNorm are not reported missing,
    as in mmengine, because older checkpoints lack them.

    Args:
        model: The model to load into.
        checkpoint: As returned by :func:`load_checkpoint`.
        logger: Where to warn about mismatched keys; defaults to mmengine's
            current ``MMLogger``.

    Returns:
        dict: ``{'missing_keys': [...], 'unexpected_keys': [...],
        'mismatched_keys': [...]}``: model keys the checkpoint lacks,
        checkpoint keys the model lacks, and keys of both whose shapes
        differ (not loaded; warned about).

    Raises:
        UserError: No weight name of the checkpoint matches the model, or
            every shared weight has another shape: nothing would load.

    Examples:
        >>> result = load_weights(model, load_checkpoint('epoch_100.pth'))
        >>> result['missing_keys'], result['unexpected_keys']
        ([], [])
    """
    from mmengine.logging import MMLogger
    from mmengine.model import is_model_wrapper
    from mmengine.runner.checkpoint import _load_checkpoint_to_model

    if logger is None:
        logger = MMLogger.get_current_instance()
    revise_keys = [(r'^module\.', '')]

    # mmengine loads whatever matches and only logs the rest, so a
    # checkpoint for another model would "load" into an untouched model.
    given = {
        re.sub(revise_keys[0][0], revise_keys[0][1], k): v
        for k, v in _state_dict_of(checkpoint).items()
    }
    target = model.module if is_model_wrapper(model) else model
    expected = target.state_dict()
    if not given.keys() & expected.keys():
        example = (f" (e.g. it has '{min(given)}', the model has "
                   f"'{min(expected)}')" if given and expected else '')
        raise UserError(
            f'checkpoint does not fit this model: none of its {len(given)} '
            f'weight names matches any of the model\'s {len(expected)}'
            f'{example}; pass the checkpoint that belongs to the config')
    # A weight of the wrong shape is skipped by the loader with a log line;
    # if that is every weight, the model keeps its random initialisation.
    mismatched = sorted(
        k for k in given.keys() & expected.keys()
        if tuple(getattr(given[k], 'shape', ())) != tuple(expected[k].shape))
    loaded = [k for k in given.keys() & expected.keys()
              if k not in mismatched and 'num_batches_tracked' not in k]
    if not loaded:
        k = mismatched[0]
        raise UserError(
            f'checkpoint does not fit this model: all {len(mismatched)} '
            'weights it shares with the model have other shapes (e.g. '
            f"'{k}' is {tuple(given[k].shape)} in the checkpoint, "
            f'{tuple(expected[k].shape)} in the model), so no weight would '
            'load; pass the checkpoint that belongs to the config, or set '
            'the config to the checkpoint\'s model (e.g. num_classes)')
    if mismatched:
        logger.warning(
            f'{len(mismatched)} checkpoint weight(s) have another shape than '
            f"the model's and were NOT loaded (they keep their random "
            f'initial values): {", ".join(mismatched[:10])}'
            + (' ...' if len(mismatched) > 10 else ''))

    # mmengine's load_state_dict logs the mismatch but returns nothing; its
    # call to the root module's post hooks carries the complete lists.
    captured = {}

    def capture(module, incompatible_keys):
        captured['missing'] = list(incompatible_keys.missing_keys)
        captured['unexpected'] = list(incompatible_keys.unexpected_keys)

    handle = target.register_load_state_dict_post_hook(capture)
    try:
        _load_checkpoint_to_model(
            model,
            checkpoint,
            strict=False,
            logger=logger,
            revise_keys=revise_keys)
    finally:
        handle.remove()
    return {
        'missing_keys': [
            k for k in captured.get('missing', [])
            if 'num_batches_tracked' not in k
        ],
        'unexpected_keys': captured.get('unexpected', []),
        'mismatched_keys': mismatched,
    }


def checkpoint_dataset_meta(checkpoint: Mapping) -> dict:
    """The class names a checkpoint was trained with, if it records them.

    mmpretrain 1.x stores ``meta['dataset_meta']``; mmcls 0.x stored
    ``meta['CLASSES']``.

    Args:
        checkpoint: As returned by :func:`load_checkpoint`.

    Returns:
        dict: A copy of ``dataset_meta`` with ``classes`` as a list, or
        ``{'classes': [...]}`` from ``CLASSES``, or ``{}`` if neither.

    Examples:
        >>> checkpoint_dataset_meta({'meta': {'CLASSES': ('cat', 'dog')}})
        {'classes': ['cat', 'dog']}
        >>> checkpoint_dataset_meta({'state_dict': {}})
        {}
    """
    meta = checkpoint.get('meta') if isinstance(checkpoint, Mapping) else None
    if not isinstance(meta, Mapping):
        return {}
    dataset_meta = meta.get('dataset_meta')
    if isinstance(dataset_meta, Mapping) and _is_class_list(
            dataset_meta.get('classes')):
        return {**dataset_meta, 'classes': list(dataset_meta['classes'])}
    if _is_class_list(meta.get('CLASSES')):
        return {'classes': list(meta['CLASSES'])}
    return {}


def _is_class_list(classes: Any) -> bool:
    # A string here would be a file name or a single class, never a list.
    return isinstance(classes, (list, tuple)) and len(classes) > 0


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks to bound memory.

    Args:
        path: The file.
        chunk: Bytes read at a time.

    Returns:
        str: 64 lowercase hex digits.

    Examples:
        >>> file_sha256('resnet18_8xb32_in1k.pth')[:8]
        '74f0a9f4'
    """
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()
