"""Install mmdet-spine.

Besides the package, the install carries ``configs/``, ``tools/``, ``model-index.yml`` and
``requirements/`` (e.g. the pinned TensorFlow requirements of the TF weight converter) under
``mmdet_spine/.mim/`` the way OpenMMLab packages do, so ``mim search mmdet_spine``,
``mim train mmdet_spine CONFIG``, the model zoo and ``_base_ = 'mmdet_spine::...'`` configs find
them: copied into wheels, symlinked for editable installs.
Torch and mmcv are deliberately not install requirements (pick the build that fits your machine;
``make setup`` pins the CPU stack).
"""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))
MIM_FILES = ('configs', 'tools', 'model-index.yml', 'requirements')


def version():
    """Read ``__version__`` without importing the package (its imports need torch)."""
    scope = {}
    with open(osp.join(HERE, 'mmdet_spine', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def add_mim_extension():
    """Place the mim files in ``mmdet_spine/.mim``: links when editable, copies otherwise."""
    editable = any(cmd in sys.argv for cmd in ('develop', 'editable_wheel'))
    building = editable or any(cmd in sys.argv for cmd in
                               ('install', 'bdist_wheel', 'sdist', 'build', 'build_py'))
    if not building:
        return
    mim_dir = osp.join(HERE, 'mmdet_spine', '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    for name in MIM_FILES:
        src, dst = osp.join(HERE, name), osp.join(mim_dir, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if editable:
            os.symlink(osp.relpath(src, mim_dir), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        else:
            shutil.copyfile(src, dst)


if __name__ == '__main__':
    add_mim_extension()
    with open(osp.join(HERE, 'README.md'), encoding='utf-8') as f:
        long_description = f.read()
    setup(
        name='mmdet_spine',
        version=version(),
        description='SpineNet, SpineResNet, BiFPN and EfficientDet for MMDetection 3.x, '
                    'with a model zoo of the official weights',
        long_description=long_description,
        long_description_content_type='text/markdown',
        license='Apache-2.0',
        python_requires='>=3.8',
        packages=find_packages(include=['mmdet_spine', 'mmdet_spine.*']),
        include_package_data=True,
        package_data={'mmdet_spine': ['.mim/model-index.yml', '.mim/configs/**/*',
                                      '.mim/tools/**/*', '.mim/requirements/*']},
        install_requires=['mmdet>=3.3.0,<3.4', 'mmengine>=0.10.7,<0.11', 'pycocotools',
                          'numpy', 'pyyaml'],
        extras_require={'deploy': ['onnx', 'onnxruntime']},
        zip_safe=False,
    )
