# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""The inspect interface on real QEMU.

The hypervisor is reached over qemu+tcp with SASL, so that nothing relies
on the conductor and the hypervisor sharing a disk.
"""

from ironic.common import states
from ironic import objects
import libvirt

from tests.functional import base


class TestInspectTCP(base.FunctionalTestCase):

    transport = 'tcp'

    def setUp(self):
        super().setUp()
        self.config(enabled_inspect_interfaces=['libvirt', 'no-inspect'])

    def test_inspection_creates_ports_once(self):
        node = self.create_node()
        node.inspect_interface = 'libvirt'
        node.save()
        for _attempt in range(2):
            with self.task(node) as task:
                self.assertEqual(
                    states.MANAGEABLE,
                    task.driver.inspect.inspect_hardware(task))
        node.refresh()
        self.assertEqual({'cpus': 1, 'memory_mb': 32, 'local_gb': 0,
                          'cpu_arch': 'x86_64',
                          'capabilities': 'boot_mode:bios'},
                         node.properties)
        self.assertEqual([self.mac()],
                         [p.address for p in objects.Port.list_by_node_id(
                             self.context, node.id)])

    def test_inspection_disk_capacity(self):
        name = self.domain_name()
        dom = self.observer.lookupByName(name)
        disk = self.daemon.base_dir / ('%s.img' % name)
        with open(disk, 'r+b') as image:
            image.truncate(5 * 1024 ** 3)
        try:
            node = self.create_node()
            node.inspect_interface = 'libvirt'
            node.save()
            with self.task(node) as task:
                task.driver.inspect.inspect_hardware(task)
            node.refresh()
            self.assertEqual(5, node.properties['local_gb'])
            self.assertEqual(libvirt.VIR_DOMAIN_SHUTOFF, dom.state()[0])
        finally:
            disk.unlink()
