"""Sphinx configuration of the ironic-libvirt release notes (reno)."""

project = 'ironic-libvirt Release Notes'
copyright = 'ironic-libvirt developers'
author = 'ironic-libvirt developers'

extensions = ['reno.sphinxext']

master_doc = 'index'
exclude_patterns = ['_build']
pygments_style = 'sphinx'
html_theme = 'alabaster'
html_static_path = []
