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

"""Health, vendor and indicators of the management interface (test:///)."""

from ironic.common import components
from ironic.common import exception
from ironic.common import health_states
from ironic.common import indicator_states

from tests.unit import base

# A domain that declares its SMBIOS manufacturer, as sushy-tools' users
# and Nova do.
SMBIOS_DOMAIN = '''<domain type='test'>
  <name>smbios</name>
  <uuid>6b4e8d5e-0000-4000-8000-000000000777</uuid>
  <memory unit='KiB'>1048576</memory>
  <sysinfo type='smbios'>
    <system><entry name='manufacturer'>Virtual Iron Works</entry></system>
  </sysinfo>
  <os><type arch='x86_64'>hvm</type><smbios mode='sysinfo'/></os>
</domain>'''


class HealthTestCase(base.TestCase):

    def _health(self, domain):
        node = self.create_node(domain=domain)
        with self.task(node, shared=True) as task:
            return task.driver.management.get_node_health(task)

    def test_running_and_stopped_domains_are_ok(self):
        self.assertEqual(health_states.HealthState.OK,
                         self._health('node-1'))
        self.assertEqual(health_states.HealthState.OK,
                         self._health('node-0'))

    def test_crashed_domain_is_critical(self):
        self.assertEqual(health_states.HealthState.CRITICAL,
                         self._health('state-6'))

    def test_no_state_is_unknown(self):
        self.assertIsNone(self._health('state-0'))


class VendorTestCase(base.TestCase):

    def _vendor(self, domain):
        node = self.create_node(domain=domain)
        with self.task(node, shared=True) as task:
            return task.driver.management.detect_vendor(task)

    def test_declared_smbios_manufacturer(self):
        self.virsh(lambda c: c.defineXML(SMBIOS_DOMAIN))
        self.assertEqual('Virtual Iron Works', self._vendor('smbios'))

    def test_test_driver_domain_declares_none(self):
        self.assertIsNone(self._vendor('node-0'))


class IndicatorTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.node = self.create_node(domain='node-1')

    def test_supported_indicators(self):
        with self.task(self.node, shared=True) as task:
            supported = task.driver.management.get_supported_indicators(task)
            only_disk = task.driver.management.get_supported_indicators(
                task, components.DISK)
        states = [indicator_states.OFF, indicator_states.ON,
                  indicator_states.BLINKING]
        self.assertEqual(
            {components.SYSTEM: {'led': {'readonly': False,
                                         'states': states}},
             components.DISK: {'led': {'readonly': False,
                                       'states': states}}}, supported)
        self.assertEqual([components.DISK], list(only_disk))

    def test_off_until_set_then_kept_in_the_domain(self):
        with self.task(self.node) as task:
            mgmt = task.driver.management
            self.assertEqual(indicator_states.OFF, mgmt.get_indicator_state(
                task, components.SYSTEM, 'led'))
            mgmt.set_indicator_state(task, components.SYSTEM, 'led',
                                     indicator_states.BLINKING)
            mgmt.set_indicator_state(task, components.DISK, 'led',
                                     indicator_states.ON)
            mgmt.set_indicator_state(task, components.SYSTEM, 'led',
                                     indicator_states.ON)
        # The states live in the domain's metadata, not in the driver.
        xml = self.xml('node-1')
        self.assertEqual(2, xml.count('<ironic-libvirt:indicator '), xml)
        self.assertIn('component="system" id="led" state="on"', xml)
        self.assertIn('component="disk" id="led" state="on"', xml)
        with self.task(self.node, shared=True) as task:
            self.assertEqual(indicator_states.ON,
                             task.driver.management.get_indicator_state(
                                 task, components.SYSTEM, 'led'))

    def test_indicators_and_a_pending_one_time_boot_coexist(self):
        # libvirt keeps one metadata element per namespace: both records
        # must survive each other's edits.
        with self.task(self.node) as task:
            task.driver.management.set_boot_device(task, 'cdrom',
                                                   persistent=False)
            task.driver.management.set_indicator_state(
                task, components.SYSTEM, 'led', indicator_states.ON)
            self.assertEqual(
                {'boot_device': 'cdrom', 'persistent': False},
                task.driver.management.get_boot_device(task))
            task.driver.management.set_boot_device(task, 'disk',
                                                   persistent=True)
            self.assertEqual(indicator_states.ON,
                             task.driver.management.get_indicator_state(
                                 task, components.SYSTEM, 'led'))
        self.assertNotIn('boot-restore', self.xml('node-1'))

    def test_unknown_component_indicator_or_state(self):
        with self.task(self.node) as task:
            mgmt = task.driver.management
            for args, named in (
                    ((components.NIC, 'led', indicator_states.ON),
                     'indicator component nic'),
                    ((components.SYSTEM, 'fan', indicator_states.ON),
                     'indicator of component system fan'),
                    ((components.SYSTEM, 'led', indicator_states.UNKNOWN),
                     'indicator state unknown')):
                exc = self.assertRaises(exception.InvalidParameterValue,
                                        mgmt.set_indicator_state, task,
                                        *args)
                self.assertIn(self.node.uuid, str(exc))
                self.assertIn(named, str(exc))
                self.assertIn('supported:', str(exc))
        self.assertNotIn('indicator', self.xml('node-1'))
