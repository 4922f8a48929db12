import pytest

import frontend


@pytest.fixture(autouse=True, scope="package")
def _one_kernel_thread():
    # The front-end tests use small tensors: one kernel thread is fastest and keeps timings
    # stable on a loaded machine.
    previous = frontend.get_num_threads()
    frontend.set_num_threads(1)
    yield
    frontend.set_num_threads(previous)
