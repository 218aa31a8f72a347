"""Every ```python block of README.md runs as written.

README.md is read at test time, so the test keeps checking whatever the
README says. The blocks run in order in one namespace (a block may use the
names of an earlier one), from a folder laid out as the README assumes:
the digits demo data at ``data/digits`` and the repository's ``configs/``.

A block is skipped only when the line before its fence is an HTML comment
``<!-- no-test: why -->`` giving the reason; at most :data:`MAX_SKIPS`.
"""
import os
import os.path as osp
import re
import textwrap

import pytest

from tests.conftest import REPO

README = osp.join(REPO, 'README.md')
MAX_SKIPS = 2
FENCE = re.compile(r'^(?P<indent>[ \t]*)```(?P<lang>[^`\s]*)\s*$')
SKIP = re.compile(r'^\s*<!--\s*no-test\b:?(?P<why>.*?)-->\s*$')


def python_blocks(text):
    """``(line, code, skip_reason)`` of each ```python block, in order."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, start = opening.group('indent'), i + 1
        end = start
        while end < len(lines) and not re.match(
                rf'^{re.escape(indent)}```\s*$', lines[end]):
            end += 1
        if opening.group('lang') == 'python':
            previous = next((line for line in reversed(lines[:i])
                             if line.strip()), '')
            skip = SKIP.match(previous)
            blocks.append((start, textwrap.dedent('\n'.join(
                lines[start:end])), skip and skip.group('why').strip()))
        i = end + 1
    return blocks


def test_blocks_are_found_and_skips_are_marked():
    text = '''
```python
a = 1
```
<!-- no-test: needs a GPU -->
```python
b = 2
```
- item:

  ```python
  c = a
  ```
```bash
not python
```
'''
    assert python_blocks(text) == [(2, 'a = 1', None),
                                   (6, 'b = 2', 'needs a GPU'),
                                   (11, 'c = a', None)]


@pytest.fixture
def readme_folder(tmp_path, digits_root, monkeypatch):
    """A working folder as the README assumes: ``data/digits``, configs."""
    os.makedirs(tmp_path / 'data')
    os.symlink(digits_root, tmp_path / 'data' / 'digits')
    os.symlink(osp.join(REPO, 'configs'), tmp_path / 'configs')
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def restored_registries():
    """The README's Extending examples register toy entries; later tests
    must see the registries as the package leaves them."""
    from mmengine.registry import Registry

    from tsneviz import registry
    registries = [r for r in vars(registry).values()
                  if isinstance(r, Registry)]
    for r in registries:
        registry.registered(r)  # import the locations before the copy
    saved = {id(r): dict(r._module_dict) for r in registries}
    yield
    for r in registries:
        r._module_dict.clear()
        r._module_dict.update(saved[id(r)])


@pytest.mark.slow
def test_readme_python_blocks_run(readme_folder, restored_registries):
    with open(README, encoding='utf-8') as f:
        blocks = python_blocks(f.read())
    assert blocks, 'README.md has no ```python block'
    skipped = [(line, why) for line, _, why in blocks if why is not None]
    assert all(why for _, why in skipped), \
        f'a <!-- no-test --> marker gives no reason: {skipped}'
    assert len(skipped) <= MAX_SKIPS, f'too many skipped blocks: {skipped}'
    namespace = {'__name__': '__readme__'}
    for line, code, why in blocks:
        if why is not None:
            continue
        try:
            exec(compile(code, f'README.md:{line}', 'exec'), namespace)
        except Exception as err:
            pytest.fail(f'the ```python block at README.md line {line} '
                        f'fails: {type(err).__name__}: {err}')
