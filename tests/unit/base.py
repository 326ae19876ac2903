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

"""Unit test base: libvirt's embedded test driver and Ironic's DB fixtures.

Every test opens ``tests/unit/nodes/nodes.xml`` through libvirt's ``test``
driver. Each open of such a URI gets a fresh copy of the file, so the
tests observe domains through the driver's own cached connection, and the
cache is emptied after every test.
"""

import os

from ironic_libvirt.drivers import resolution
from ironic_libvirt.virt import connection
from tests import driver_case

NODES_XML = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                         'nodes', 'nodes.xml')
TEST_URI = 'test://' + NODES_XML
INACTIVE = 3  # VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE

HARDWARE_TYPES = ['libvirt', 'pxe_libvirt_agent', 'pxe_libvirt_iscsi',
                  'fake_libvirt_fake', 'fake-hardware']


def uuid_of(index):
    """UUID of a domain of nodes.xml by its number."""
    return '6b4e8d5e-0000-4000-8000-%012d' % index


class TestCase(driver_case.DriverTestCase):
    """Ironic DB test case with this driver enabled on the test driver."""

    def setUp(self):
        super().setUp()
        self.config(enabled_hardware_types=HARDWARE_TYPES,
                    enabled_power_interfaces=['libvirt', 'fake'],
                    enabled_management_interfaces=['libvirt', 'fake',
                                                   'noop'],
                    enabled_boot_interfaces=['fake', 'pxe'],
                    enabled_deploy_interfaces=['fake', 'direct'])
        self.config(allow_test_driver=True, group='libvirt')

    def create_node(self, domain=None, macs=(), driver='libvirt', **info):
        """An Ironic node on the test hypervisor, with a port per MAC."""
        driver_info = {'libvirt_uri': TEST_URI}
        if domain is not None:
            driver_info['libvirt_domain'] = domain
        driver_info.update(info)
        return self.add_node(driver_info, macs, driver)

    def hypervisor(self, uri=TEST_URI):
        """The driver's own connection to the test hypervisor."""
        return resolution.RESOLVER.connections().get(
            connection.ConnectionParams(uri=uri))

    def virsh(self, func):
        """Run ``func(virConnect)`` on the driver's connection."""
        return self.hypervisor().call(func, 'test inspection')

    def xml(self, name, flags=INACTIVE):
        return self.virsh(lambda c: c.lookupByName(name).XMLDesc(flags))

    def state(self, name):
        return self.virsh(lambda c: c.lookupByName(name).state()[0])
