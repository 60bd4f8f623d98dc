from setuptools import find_packages, setup

setup(name='mmdet_spine', version='0.1.0', packages=find_packages(include=['mmdet_spine', 'mmdet_spine.*']))
