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

"""The libvirt-graphical console interface on libvirt's test driver.

The test driver keeps definitions and states like a real hypervisor but
has no QEMU, so no VNC server listens, and it refuses live device
changes, which stands for a hypervisor that refuses them. The relay is
Ironic's real socat; what runs behind it is exercised by the functional
and end-to-end tests.
"""

import socket
import xml.etree.ElementTree as ET

import fixtures
from ironic.common import exception as ironic_exception
from ironic.drivers.modules import console_utils

from ironic_libvirt.drivers import resolution
from ironic_libvirt.virt import domain_xml
from ironic_libvirt.virt import errors
from ironic_libvirt.virt import graphics
from tests.unit import base


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class DomainXMLTestCase(base.TestCase):

    PLAIN = ("<domain><name>d</name><devices><disk device='disk'/>"
             "</devices></domain>")

    def _graphics(self, xml):
        return ET.fromstring(xml).findall('devices/graphics')

    def test_set_vnc_adds_a_server_with_an_automatic_port(self):
        xml = domain_xml.set_vnc(self.PLAIN, '127.0.0.1', 'Secret12')
        (graphics,) = self._graphics(xml)
        self.assertEqual({'type': 'vnc', 'port': '-1', 'autoport': 'yes',
                          'listen': '127.0.0.1', 'passwd': 'Secret12'},
                         graphics.attrib)
        self.assertEqual([{'type': 'address', 'address': '127.0.0.1'}],
                         [e.attrib for e in graphics])

    def test_set_vnc_replaces_listening_everywhere_keeps_the_rest(self):
        xml = ("<domain><devices><graphics type='vnc' port='5905' "
               "autoport='no' listen='0.0.0.0' keymap='de' "
               "passwdValidTo='2001-01-01T00:00:00'>"
               "<listen type='network' network='default'/></graphics>"
               "</devices></domain>")
        (graphics,) = self._graphics(
            domain_xml.set_vnc(xml, '192.0.2.7', 'pw'))
        self.assertEqual({'type': 'vnc', 'port': '5905', 'autoport': 'no',
                          'listen': '192.0.2.7', 'keymap': 'de',
                          'passwd': 'pw'}, graphics.attrib)
        self.assertEqual([{'type': 'address', 'address': '192.0.2.7'}],
                         [e.attrib for e in graphics])

    def test_expired_password(self):
        xml = domain_xml.set_vnc(self.PLAIN, '127.0.0.1', 'pw', expired=True)
        (graphics,) = self._graphics(xml)
        self.assertEqual(domain_xml.PASSWORD_EXPIRED,
                         graphics.get('passwdValidTo'))

    def test_vnc_reads_address_port_password(self):
        xml = ("<domain><devices><graphics type='spice'/>"
               "<graphics type='vnc' port='5901' passwd='pw'>"
               "<listen type='address' address='::1'/></graphics>"
               "</devices></domain>")
        self.assertEqual({'listen': '::1', 'port': 5901, 'password': 'pw'},
                         domain_xml.vnc(xml))
        self.assertIsNone(domain_xml.vnc(self.PLAIN))

    def test_vnc_device_is_the_device_with_a_new_password(self):
        xml = domain_xml.set_vnc(self.PLAIN, '127.0.0.1', 'old')
        device = ET.fromstring(domain_xml.vnc_device(xml, 'new'))
        self.assertEqual(('graphics', 'new'),
                         (device.tag, device.get('passwd')))
        self.assertRaises(errors.InvalidDomainXML, domain_xml.vnc_device,
                          self.PLAIN, 'x')


class PasswordTestCase(base.TestCase):

    def test_passwords_are_eight_random_characters(self):
        passwords = {graphics.new_password() for _ in range(50)}
        self.assertEqual(50, len(passwords))
        self.assertEqual({8}, {len(p) for p in passwords})


class GraphicalConsoleTestCase(base.TestCase):

    # The relay is Ironic's real socat, started and stopped by the driver.
    block_execute = False

    def setUp(self):
        super().setUp()
        self.config(enabled_console_interfaces=['libvirt-graphical',
                                                'no-console'])
        port = _free_port()
        pid_dir = self.useFixture(fixtures.TempDir()).path
        self.config(terminal_pid_dir=pid_dir, socat_address='127.0.0.1',
                    port_range='%d:%d' % (port, port + 1), group='console')
        self.config(public_url='http://127.0.0.1:6090/vnc_lite.html',
                    group='vnc')
        self.logs = self.useFixture(fixtures.FakeLogger(level='DEBUG'))
        self.node = self.create_node('node-0')
        self.node.console_interface = 'libvirt-graphical'
        self.node.save()
        self.addCleanup(self._stop_socat)

    def _stop_socat(self):
        try:
            console_utils.stop_socat_console(self.node.uuid)
        except ironic_exception.ConsoleError:
            pass

    def _power_off(self, name):
        # nodes.xml defines node-0 powered off; say so where it matters.
        self.assertEqual(0, self.virsh(
            lambda c: c.lookupByName(name).isActive()))

    def _power_on(self, name):
        self.virsh(lambda c: c.lookupByName(name).create())

    def _vnc(self, name='node-0'):
        return domain_xml.vnc(self.xml(name))

    def test_enable_and_disable_a_powered_off_domain(self):
        self._power_off('node-0')
        with self.task(self.node) as task:
            task.driver.console.start_console(task)
            info = dict(task.node.driver_internal_info)
            url = task.driver.console.get_console(task)
        vnc = self._vnc()
        self.assertEqual('127.0.0.1', vnc['listen'])
        self.assertEqual(8, len(vnc['password']))
        self.assertEqual('127.0.0.1', info['vnc_host'])
        self.assertEqual(info['allocated_libvirt_console_port'],
                         info['vnc_port'])
        self.assertEqual('vnc', url['type'])
        self.assertIn(info['novnc_secret_token'], url['url'])
        # The relay listens where the node record says.
        port = info['vnc_port']
        with socket.create_connection(('127.0.0.1', port), timeout=30):
            pass

        with self.task(self.node) as task:
            task.driver.console.stop_console(task)
            info = dict(task.node.driver_internal_info)
        for key in ('vnc_host', 'vnc_port', 'novnc_secret_token',
                    'allocated_libvirt_console_port'):
            self.assertNotIn(key, info)
        inactive = ET.fromstring(self.xml('node-0')).find('devices/graphics')
        self.assertEqual(domain_xml.PASSWORD_EXPIRED,
                         inactive.get('passwdValidTo'))
        self.assertNotEqual(vnc['password'], inactive.get('passwd'))
        self.assertNotIn(vnc['password'], self.logs.output)
        self.assertRaises(ConnectionRefusedError, socket.create_connection,
                          ('127.0.0.1', port), 30)

    def test_console_port_is_a_documented_checked_property(self):
        # The relay listens on libvirt_console_port when it is set, as the
        # serial console does: validate() must catch a bad one.
        self.node.driver_info = dict(self.node.driver_info,
                                     libvirt_console_port='http')
        self.node.save()
        with self.task(self.node, shared=True) as task:
            self.assertIn('libvirt_console_port',
                          task.driver.console.get_properties())
            exc = self.assertRaises(ironic_exception.InvalidParameterValue,
                                    task.driver.console.validate, task)
        self.assertIn('libvirt_console_port', str(exc))

    def test_each_enable_has_a_new_password(self):
        self._power_off('node-0')
        passwords = set()
        for _ in range(2):
            with self.task(self.node) as task:
                task.driver.console.start_console(task)
            passwords.add(self._vnc()['password'])
        self.assertEqual(2, len(passwords))

    def test_running_domain_without_vnc_needs_a_power_cycle(self):
        self._power_on('node-0')
        with self.task(self.node) as task:
            exc = self.assertRaises(ironic_exception.DriverOperationError,
                                    task.driver.console.start_console, task)
            self.assertNotIn('vnc_port', task.node.driver_internal_info)
        self.assertIn('Node %s' % self.node.uuid, str(exc))
        self.assertIn('power the node off and on', str(exc))
        # The next start has the VNC server.
        password = self._vnc()['password']
        self.assertEqual(8, len(password))
        self.assertNotIn(password, str(exc))
        self.assertNotIn(password, self.logs.output)

    def test_hypervisor_refusing_a_live_change(self):
        self._power_off('node-0')
        with self.task(self.node) as task:
            task.driver.console.start_console(task)
            task.driver.console.stop_console(task)
        self._power_on('node-0')
        self.assertIsNotNone(self._vnc())
        with self.task(self.node) as task:
            exc = self.assertRaises(ironic_exception.DriverOperationError,
                                    task.driver.console.start_console, task)
        self.assertIn('refuses to change the VNC password', str(exc))
        self.assertIn('Node %s' % self.node.uuid, str(exc))
        password = self._vnc()['password']
        self.assertNotIn(password, str(exc))
        self.assertNotIn(password, self.logs.output)

    def test_relay_target_of_a_running_domain(self):
        self._power_off('node-0')
        with self.task(self.node) as task:
            task.driver.console.start_console(task)
        self._power_on('node-0')
        # The test driver gives no port: there is nothing to connect to.
        with self.task(self.node) as task:
            exc = self.assertRaises(
                graphics.RelayFailed, graphics.target,
                resolution.with_domain(task, 'test', lambda d: d))
        self.assertIn('does not run with a VNC server', str(exc))
