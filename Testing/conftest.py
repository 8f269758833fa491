"""Suite-wide test settings.

In-process fits use one torch thread: two OpenMP threads collapse on a 2-core
machine as soon as anything else runs (PERFORMANCE.md), and one thread keeps
results reproducible run to run. Worker subprocesses get ``--threads`` explicitly.
"""

import pytest


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
