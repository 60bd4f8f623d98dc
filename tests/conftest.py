import pytest

from helpers import TINY_SPEC


@pytest.fixture(scope='session')
def tiny_shapes(tmp_path_factory):
    """A tiny shapes dataset generated once per session (the tiny config's settings)."""
    from mmdet_spine.datasets import ensure_shapes_dataset
    root = str(tmp_path_factory.mktemp('data') / 'shapes_tiny') + '/'
    ensure_shapes_dataset(root, **TINY_SPEC)
    return root


@pytest.fixture(autouse=True, scope='session')
def _flush_denormals():
    """Randomly initialised nets drift into denormal floats, which x86 CPUs compute up to
    100x slower (see FlushDenormalHook); flush them for the whole test session."""
    import torch
    torch.set_flush_denormal(True)
    yield
