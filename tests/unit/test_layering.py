#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""Imports run cmd -> drivers -> virt, never back; lab/ uses only virt.

``virt`` is the libvirt core and imports nothing of Ironic, so that the
command line and the lab tools use it without a conductor; ``drivers``
are Ironic's interfaces over the core; ``cmd`` is the command line;
``lab`` is lab tooling, which imports neither Ironic nor the drivers.
"""

import ast
import pathlib
import unittest

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / 'ironic_libvirt'


def imported_modules(path):
    """Every module a source file imports, by its absolute name."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


class LayeringTestCase(unittest.TestCase):

    def imports_of(self, layer):
        for path in sorted((PACKAGE / layer).glob('*.py')):
            for module in imported_modules(path):
                yield path.name, module

    def test_virt_imports_no_ironic_and_no_upper_layer(self):
        for name, module in self.imports_of('virt'):
            self.assertFalse(
                module == 'ironic' or module.startswith('ironic.'),
                '%s imports %s' % (name, module))
            self.assertFalse(
                module.startswith(('ironic_libvirt.drivers',
                                   'ironic_libvirt.cmd')),
                '%s imports %s' % (name, module))

    def test_drivers_do_not_import_the_command_line(self):
        for name, module in self.imports_of('drivers'):
            self.assertFalse(module.startswith('ironic_libvirt.cmd'),
                             '%s imports %s' % (name, module))

    def test_lab_imports_no_ironic_and_no_driver(self):
        modules = list(self.imports_of('lab'))
        self.assertTrue(modules)  # the folder is there and has imports
        for name, module in modules:
            self.assertFalse(
                module == 'ironic' or module.startswith(
                    ('ironic.', 'ironic_libvirt.drivers',
                     'ironic_libvirt.cmd')),
                '%s imports %s' % (name, module))
