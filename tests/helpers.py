"""Shared test helpers (tests/ is on sys.path via pytest.ini)."""
import importlib.util
import os
import os.path as osp
import socket
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY_CONFIG = osp.join(REPO, 'tests', 'data', 'configs', 'tiny_retinanet_shapes.py')
TINY_SPEC = dict(num_train=16, num_val=8, img_size=128, max_objects=3, max_size=48)
# The TF Model Garden reference environment (`make setup-test` creates it); MMDET_SPINE_TF_PYTHON
# points elsewhere if it lives outside the checkout.
TF_PYTHON = (os.environ.get('MMDET_SPINE_TF_PYTHON')
             or osp.join(REPO, '.venv-tf', 'bin', 'python'))


def load_tool(path: str, name: str = None):
    """Import a script (tools/ is not a package) as a module; ``path`` may be repo-relative."""
    path = path if osp.isabs(path) else osp.join(REPO, path)
    name = name or osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_tool(args, shapes_root=None, timeout=600, env=None, check=True):
    """Run a tools/ script with this interpreter from the repo root; return the process."""
    full_env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1', **(env or {}))
    if shapes_root:
        full_env['SHAPES_ROOT'] = shapes_root
    cmd = list(args) if args[0] == 'bash' else [sys.executable] + list(args)
    proc = subprocess.run(cmd, cwd=REPO, env=full_env, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{cmd} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n'
                             f'{proc.stderr[-6000:]}')
    return proc
