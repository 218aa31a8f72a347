"""benchmarks/bench_gpu.py runs: on this CPU-only machine, torchdr at a
tiny size against openTSNE, every row of its table filled in."""
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO

SCRIPT = osp.join(REPO, 'benchmarks', 'bench_gpu.py')


@pytest.mark.slow
def test_bench_gpu_prints_a_side_by_side_table(tmp_path):
    proc = subprocess.run(
        [sys.executable, SCRIPT, '--sizes', '300', '--n-iter', '250',
         '--n-jobs', '1'],
        capture_output=True, text=True, cwd=str(tmp_path), timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = {cells[1]: cells for cells in (
        [c.strip() for c in line.strip('|').split('|')]
        for line in proc.stdout.splitlines() if line.startswith('| 300 |'))}
    assert set(rows) == {'opentsne', 'torchdr', 'cuml', 'tsnecuda'}
    for backend in ('opentsne', 'torchdr'):
        n, _, device, seconds, ratio, acc, load, beat = rows[backend]
        assert float(seconds) > 0
        assert re.fullmatch(r'\d+\.\d\dx', ratio)
        # 10 blobs: chance is 0.1
        assert float(acc) > 0.9
    assert rows['torchdr'][2].startswith('cuda' if torch.cuda.is_available()
                                         else 'cpu')
    assert rows['opentsne'][4] == '1.00x'
    # the figures to beat are in the table
    assert '1,300,000 in 37 s' in rows['cuml'][7]
    assert '60,000 in 7 s' in rows['tsnecuda'][7]
    if not torch.cuda.is_available():
        assert rows['cuml'][2] == rows['tsnecuda'][2] == \
            'not available: no CUDA'
