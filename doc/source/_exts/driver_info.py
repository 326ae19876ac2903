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

"""Sphinx extension: the driver_info reference, generated from the code.

``.. driver-info-table::`` renders a table of the properties that
``LibvirtPower().get_properties()`` returns (the keys Ironic lists for the
hardware type in ``baremetal driver property list libvirt``), so the
documentation cannot drift from what the driver accepts.
"""

from docutils import nodes
from docutils.parsers.rst import Directive


def _properties():
    from ironic_libvirt.drivers import power
    return power.LibvirtPower().get_properties()


class DriverInfoTable(Directive):
    """Render ``{key: description}`` as a two-column table."""

    has_content = False

    def run(self):
        table = nodes.table()
        group = nodes.tgroup(cols=2)
        table += group
        group += nodes.colspec(colwidth=25)
        group += nodes.colspec(colwidth=75)
        head = nodes.thead()
        group += head
        head += self._row('key', 'description', literal=False)
        body = nodes.tbody()
        group += body
        for key, description in sorted(_properties().items()):
            body += self._row(key, str(description))
        return [table]

    @staticmethod
    def _row(key, description, literal=True):
        row = nodes.row()
        key_entry = nodes.entry()
        key_para = nodes.paragraph()
        key_para += nodes.literal(text=key) if literal else nodes.Text(key)
        key_entry += key_para
        row += key_entry
        text_entry = nodes.entry()
        text_entry += nodes.paragraph(text=description)
        row += text_entry
        return row


def setup(app):
    app.add_directive('driver-info-table', DriverInfoTable)
    return {'parallel_read_safe': True, 'parallel_write_safe': True,
            'version': '1.0'}
