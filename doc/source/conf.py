"""Sphinx configuration of the ironic-libvirt documentation."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.abspath(os.path.dirname(__file__)),
                                '_exts'))

project = 'ironic-libvirt'
copyright = 'ironic-libvirt developers'
author = 'ironic-libvirt developers'

extensions = [
    'oslo_config.sphinxext',
    'driver_info',
]


master_doc = 'index'
exclude_patterns = ['_build']
pygments_style = 'sphinx'
html_theme = 'alabaster'
html_static_path = []
html_title = 'ironic-libvirt'
