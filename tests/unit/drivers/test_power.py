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

"""Power interface ``libvirt`` on libvirt's test driver."""

import xml.etree.ElementTree as ET

from ironic.common import exception
from ironic.common import states
import libvirt

from ironic_libvirt.drivers import resolution
from tests.unit import base


class GetPowerStateTestCase(base.TestCase):

    def test_every_libvirt_state_has_its_mapping(self):
        expected = {0: states.ERROR, 1: states.POWER_ON, 2: states.POWER_ON,
                    3: states.POWER_ON, 4: states.POWER_ON,
                    5: states.POWER_OFF, 6: states.ERROR, 7: states.POWER_ON}
        for code, ironic_state in expected.items():
            node = self.create_node(domain='state-%d' % code)
            with self.task(node, shared=True) as task:
                self.assertEqual(ironic_state,
                                 task.driver.power.get_power_state(task),
                                 'libvirt state %d' % code)
            self.assertEqual(code, self.state('state-%d' % code))

    def test_one_connection_serves_every_call(self):
        node = self.create_node(domain='node-0')
        with self.task(node) as task:
            task.driver.power.set_power_state(task, states.POWER_ON)
        # The test driver forgets its state when its connection closes: a
        # connection per call would read "off" here.
        with self.task(node, shared=True) as task:
            self.assertEqual(states.POWER_ON,
                             task.driver.power.get_power_state(task))
        self.assertEqual(1, len(resolution.RESOLVER.connections()))

    def test_supported_power_states(self):
        node = self.create_node(domain='node-0')
        with self.task(node, shared=True) as task:
            self.assertEqual(
                [states.POWER_ON, states.POWER_OFF, states.REBOOT,
                 states.SOFT_REBOOT, states.SOFT_POWER_OFF],
                task.driver.power.get_supported_power_states(task))


class SetPowerStateTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.node = self.create_node(domain='node-0')

    def _set(self, power_state, node=None):
        with self.task(node or self.node) as task:
            task.driver.power.set_power_state(task, power_state, timeout=5)

    def test_power_on_and_off(self):
        self._set(states.POWER_ON)
        self.assertEqual(libvirt.VIR_DOMAIN_RUNNING, self.state('node-0'))
        self._set(states.POWER_OFF)
        self.assertEqual(libvirt.VIR_DOMAIN_SHUTOFF, self.state('node-0'))

    def test_power_off_twice_is_harmless(self):
        self._set(states.POWER_OFF)
        self._set(states.POWER_OFF)
        self.assertEqual(libvirt.VIR_DOMAIN_SHUTOFF, self.state('node-0'))

    def test_soft_power_off(self):
        self._set(states.POWER_ON)
        self._set(states.SOFT_POWER_OFF)
        self.assertEqual(libvirt.VIR_DOMAIN_SHUTOFF, self.state('node-0'))

    def test_reboot_is_a_cold_cycle(self):
        self._set(states.POWER_ON)
        first_id = self.virsh(lambda c: c.lookupByName('node-0').ID())
        self._set(states.REBOOT)
        self.assertEqual(libvirt.VIR_DOMAIN_RUNNING, self.state('node-0'))
        self.assertNotEqual(
            first_id, self.virsh(lambda c: c.lookupByName('node-0').ID()))

    def test_soft_reboot_restarts(self):
        self._set(states.POWER_ON)
        first_id = self.virsh(lambda c: c.lookupByName('node-0').ID())
        self._set(states.SOFT_REBOOT)
        self.assertEqual(libvirt.VIR_DOMAIN_RUNNING, self.state('node-0'))
        self.assertNotEqual(
            first_id, self.virsh(lambda c: c.lookupByName('node-0').ID()))

    def test_power_on_from_crashed(self):
        node = self.create_node(domain='state-6')
        self._set(states.POWER_ON, node)
        self.assertEqual(libvirt.VIR_DOMAIN_RUNNING, self.state('state-6'))

    def test_unsupported_state(self):
        with self.task(self.node) as task:
            exc = self.assertRaises(exception.InvalidParameterValue,
                                    task.driver.power.set_power_state,
                                    task, 'bogus state')
        self.assertIn(self.node.uuid, str(exc))
        self.assertIn('bogus state', str(exc))

    def test_set_power_state_needs_exclusive_lock(self):
        with self.task(self.node, shared=True) as task:
            self.assertRaises(exception.ExclusiveLockRequired,
                              task.driver.power.set_power_state,
                              task, states.POWER_ON)

    def test_one_time_boot_device_is_restored_after_the_start(self):
        with self.task(self.node) as task:
            task.driver.management.set_boot_device(task, 'cdrom',
                                                   persistent=False)
            self.assertEqual({'boot_device': 'cdrom', 'persistent': False},
                             task.driver.management.get_boot_device(task))
            task.driver.power.reboot(task)
            self.assertEqual({'boot_device': 'pxe', 'persistent': True},
                             task.driver.management.get_boot_device(task))
        os_el = ET.fromstring(self.xml('node-0')).find('os')
        self.assertEqual(['network', 'hd'],
                         [b.get('dev') for b in os_el.iter('boot')])
        self.assertNotIn('ironic-libvirt', self.xml('node-0'))
