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

"""Inspect interface ``libvirt`` on libvirt's test driver."""

from ironic.common import exception
from ironic.common import states
from ironic.drivers.modules import inspect_utils
from ironic import objects

from ironic_libvirt.drivers import inspect
from tests.unit import base


class InspectTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.config(enabled_inspect_interfaces=['libvirt', 'no-inspect'])

    def _node(self, domain, macs=(), **properties):
        node = self.create_node(domain=domain, macs=macs)
        node.inspect_interface = 'libvirt'
        node.properties = properties
        node.save()
        return node

    def _inspect(self, node):
        with self.task(node) as task:
            self.assertIsInstance(task.driver.inspect, inspect.LibvirtInspect)
            return task.driver.inspect.inspect_hardware(task)

    def _ports(self, node):
        return sorted(p.address for p in
                      objects.Port.list_by_node_id(self.context, node.id))

    def test_properties_ports_and_inventory(self):
        node = self._node('node-1')
        self.assertEqual(states.MANAGEABLE, self._inspect(node))
        node.refresh()
        # The test driver reports 1 TiB - 5 MiB for every disk.
        self.assertEqual({'cpus': 2, 'memory_mb': 1024, 'local_gb': 1023,
                          'cpu_arch': 'x86_64',
                          'capabilities': 'boot_mode:bios'},
                         node.properties)
        self.assertEqual(['52:54:00:00:00:01', '52:54:00:00:01:01'],
                         self._ports(node))
        inventory = inspect_utils.get_inspection_data(
            node, self.context)['inventory']
        self.assertEqual(2, inventory['cpu']['count'])
        self.assertEqual('52:54:00:00:00:01',
                         inventory['boot']['pxe_interface'])
        self.assertEqual([{'name': 'vda', 'size': 1099506450432}],
                         inventory['disks'])

    def test_ports_are_created_once(self):
        node = self._node('node-1', macs=['52:54:00:00:01:01'])
        self._inspect(node)
        self._inspect(node)
        self.assertEqual(['52:54:00:00:00:01', '52:54:00:00:01:01'],
                         self._ports(node))

    def test_uefi_and_existing_capabilities(self):
        node = self._node('node-uefi', capabilities='secure_boot:false')
        self._inspect(node)
        node.refresh()
        self.assertEqual({'secure_boot': 'false', 'boot_mode': 'uefi'},
                         dict(c.split(':') for c in
                              node.properties['capabilities'].split(',')))

    def test_boot_mode_set_by_the_operator_is_kept(self):
        node = self._node('node-uefi', capabilities='boot_mode:bios')
        self._inspect(node)
        node.refresh()
        self.assertEqual('boot_mode:bios', node.properties['capabilities'])

    def test_diskless_domain(self):
        node = self._node('diskless')
        self._inspect(node)
        node.refresh()
        self.assertEqual(0, node.properties['local_gb'])

    def test_unknown_domain(self):
        node = self._node('no-such-domain')
        self.assertRaises(exception.IronicException, self._inspect, node)
        node.refresh()
        self.assertEqual({}, node.properties)
