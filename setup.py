import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def requirements(name):
    lines = (HERE / 'requirements' / name).read_text().splitlines()
    return [line.split('#')[0].strip() for line in lines
            if line.split('#')[0].strip()]


version = re.search(r"__version__ = '([^']+)'",
                    (HERE / 'tsneviz' / '__init__.py').read_text()).group(1)

setup(
    name='tsneviz',
    version=version,
    description='See what an image classifier has learned: t-SNE of '
    'mmpretrain features, with plots, metrics and run directories.',
    long_description=(HERE / 'README.md').read_text(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['tsneviz', 'tsneviz.*']),
    # the explorer page's CSS, JavaScript and HTML template, read with
    # importlib.resources (MANIFEST.in puts them in the sdist too)
    package_data={'tsneviz.explorer': ['static/*.css', 'static/*.js',
                                       'templates/*.j2']},
    python_requires='>=3.9',
    install_requires=requirements('runtime.txt'),
    extras_require={'optional': requirements('optional.txt'),
                    'tests': requirements('tests.txt')},
    license='Apache-2.0',
)
