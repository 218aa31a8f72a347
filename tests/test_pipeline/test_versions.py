"""``run.json`` versions: read, not imported, for libraries a run skips."""
import subprocess
import sys

SCRIPT = '''
import sys
from tsneviz.pipeline.result import versions
found = versions()
print(sorted(found))
print(sorted(m for m in ('torchvision', 'mmpretrain') if m in sys.modules))
'''


def test_versions_are_read_without_importing_unused_libraries():
    done = subprocess.run([sys.executable, '-c', SCRIPT], check=True,
                          capture_output=True, text=True)
    found, imported = done.stdout.strip().splitlines()[-2:]
    for name in ('torch', 'torchvision', 'mmpretrain', 'openTSNE',
                 'sklearn', 'mmcv'):
        assert repr(name) in found
    # reading a version must not pull in the heavy import it names
    assert imported == '[]'
