"""Sphinx configuration for the huey-supervised documentation.

Build with::

    python -m sphinx -W -b html docs docs/_build/html
"""
import os
import sys

# autodoc imports the package from this checkout, not from site-packages.
sys.path.insert(0, os.path.abspath('..'))

project = 'huey-supervised'
author = 'the huey-supervised authors'
copyright = '2024, %s' % author

try:
    from huey import __version__ as release
except Exception:  # a broken import must not hide the rest of the docs
    release = '0.1.0'
version = '.'.join(release.split('.')[:2])

extensions = ['sphinx.ext.autodoc']

# Pages are written by hand; autodoc only fills in reference blocks, in the
# order the source declares things.
autodoc_member_order = 'bysource'
autodoc_typehints = 'description'
autodoc_default_options = {'undoc-members': False}

master_doc = 'index'
exclude_patterns = ['_build']
pygments_style = 'sphinx'
highlight_language = 'python3'

html_theme = 'alabaster'
html_theme_options = {
    'description': 'A huey-style task queue with a supervised consumer',
    'fixed_sidebar': True,
}
html_static_path = []
