import pytest

from graphruntime import _C


@pytest.fixture(autouse=True)
def _restore_isa_and_threads():
    """Kernel tests cap the ISA (EMBER_ISA levels) and set the thread count; each test gets the
    process's settings back afterwards."""
    isa, threads = _C.get_max_isa(), _C.get_num_threads()
    yield
    _C.set_max_isa(isa)
    _C.set_num_threads(threads)
