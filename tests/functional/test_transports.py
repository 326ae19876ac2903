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

"""Power and management through Ironic's interfaces, over every transport.

Each scenario runs once per transport (unix socket, qemu+ssh with a key,
qemu+tcp with SASL, qemu+tls with client certificates) against real QEMU
domains, followed by the failures a user meets on that transport.
"""

import xml.etree.ElementTree as ET

from ironic.common import boot_devices
from ironic.common import boot_modes
from ironic.common import exception
from ironic.common import states
import libvirt

from tests.functional import base
from tests.harness import domains
from tests.harness import system

RUNNING = libvirt.VIR_DOMAIN_RUNNING
SHUTOFF = libvirt.VIR_DOMAIN_SHUTOFF


class _Scenarios:
    """What every transport must do; mixed into a test class per transport."""

    def _power(self, node, power_state, timeout=10):
        with self.task(node) as task:
            task.driver.power.set_power_state(task, power_state,
                                              timeout=timeout)
            return task.driver.power.get_power_state(task)

    def test_power_on_and_off(self):
        node = self.create_node()
        with self.task(node, shared=True) as task:
            self.assertEqual(states.POWER_OFF,
                             task.driver.power.get_power_state(task))
        self.assertEqual(states.POWER_ON, self._power(node, states.POWER_ON))
        self.assertEqual(RUNNING, self.state())
        self.assertEqual(states.POWER_OFF,
                         self._power(node, states.POWER_OFF))
        self.assertEqual(SHUTOFF, self.state())

    def test_reboot_starts_a_new_qemu(self):
        node = self.create_node()
        self._power(node, states.POWER_ON)
        pid = self.qemu_pid()
        dom_id = self.observer.lookupByName(self.domain_name()).ID()

        self.assertEqual(states.POWER_ON, self._power(node, states.REBOOT))

        self.assertEqual(RUNNING, self.state())
        self.assertNotEqual(pid, self.qemu_pid())
        self.assertNotEqual(
            dom_id, self.observer.lookupByName(self.domain_name()).ID())

    def test_soft_power_off_timeout_leaves_the_domain_running(self):
        # Without an operating system nothing answers the ACPI request.
        node = self.create_node()
        self._power(node, states.POWER_ON)
        pid = self.qemu_pid()

        self.assertRaises(exception.PowerStateFailure, self._power, node,
                          states.SOFT_POWER_OFF, timeout=1)

        self.assertEqual(RUNNING, self.state())
        self.assertEqual(pid, self.qemu_pid())
        self.assertIn('Node %s: the guest did not shut down' % node.uuid,
                      self.logs.output)

    def test_persistent_boot_device(self):
        node = self.create_node()
        with self.task(node) as task:
            task.driver.management.set_boot_device(task, boot_devices.DISK,
                                                   persistent=True)
            self.assertEqual({'boot_device': boot_devices.DISK,
                              'persistent': True},
                             task.driver.management.get_boot_device(task))
        self.assertEqual(['hd', 'network'], base.boot_order(self.xml()))

        self._power(node, states.POWER_ON)

        self.assertEqual(['hd', 'network'], base.boot_order(self.xml(flags=0)))
        self.assertEqual(['hd', 'network'], base.boot_order(self.xml()))

    def test_one_time_boot_device(self):
        node = self.create_node()
        with self.task(node) as task:
            task.driver.management.set_boot_device(task, boot_devices.CDROM,
                                                   persistent=False)
            self.assertEqual({'boot_device': boot_devices.CDROM,
                              'persistent': False},
                             task.driver.management.get_boot_device(task))
        self.assertEqual(['cdrom', 'network'], base.boot_order(self.xml()))

        self._power(node, states.POWER_ON)

        self.assertEqual(['cdrom', 'network'],
                         base.boot_order(self.xml(flags=0)))
        self.assertEqual(['network'], base.boot_order(self.xml()))
        with self.task(node, shared=True) as task:
            self.assertEqual({'boot_device': boot_devices.PXE,
                              'persistent': True},
                             task.driver.management.get_boot_device(task))

    def test_uefi_boot_mode(self):
        if not domains.ovmf_available():
            self.skipTest('OVMF is not installed')
        node = self.create_node()
        with self.task(node) as task:
            self.assertEqual(boot_modes.LEGACY_BIOS,
                             task.driver.management.get_boot_mode(task))
            task.driver.management.set_boot_mode(task, boot_modes.UEFI)
            self.assertEqual(boot_modes.UEFI,
                             task.driver.management.get_boot_mode(task))

        self._power(node, states.POWER_ON)

        self.assertEqual(RUNNING, self.state())
        loader = ET.fromstring(self.xml(flags=0)).find('os/loader')
        self.assertIsNotNone(loader)
        self.assertEqual('pflash', loader.get('type'))
        self.assertIn('OVMF', loader.text)

    def test_node_found_by_port_mac(self):
        node = self.create_node(role=None, macs=[self.mac('decoy').upper()])

        self.assertEqual(states.POWER_ON, self._power(node, states.POWER_ON))

        self.assertEqual(RUNNING, self.state('decoy'))
        self.assertEqual(SHUTOFF, self.state('node'))
        with self.task(node, shared=True) as task:
            self.assertEqual([self.mac('decoy')],
                             task.driver.management.get_mac_addresses(task))

    def assert_fails(self, node, error, *texts):
        """Reading the power state raises error naming node and texts.

        :returns: the message.
        """
        with self.task(node, shared=True) as task:
            exc = self.assertRaises(error,
                                    task.driver.power.get_power_state, task)
        message = str(exc)
        for text in (node.uuid,) + texts:
            self.assertIn(text, message)
        self.assert_no_secret(message)
        return message

    def test_unknown_domain(self):
        node = self.create_node(role=None, libvirt_domain='no-such-domain',
                                **self.credentials())
        self.assert_fails(node, exception.InvalidParameterValue,
                          'no-such-domain', 'Check driver_info libvirt_domain')

    def credentials(self):
        """SASL credentials, so that failures show they keep them secret.

        Transports without SASL ignore them.
        """
        return {'sasl_username': self.daemon.sasl_username,
                'sasl_password': self.daemon.sasl_password}


class _RemoteScenarios(_Scenarios):
    """What every remote transport must do."""

    def test_unreachable_host(self):
        closed = system.free_port()
        info = base.driver_info(self.daemon, self.transport, port=closed)
        info.update(self.credentials())
        node = self.create_node(**info)
        self.assert_fails(node, exception.TemporaryFailure,
                          '127.0.0.1:%d' % closed, 'Connection refused',
                          'Check driver_info libvirt_uri')


class UnixSocketTestCase(_Scenarios, base.FunctionalTestCase):
    """qemu:///system through the default unix socket."""

    transport = 'unix'

    def test_one_time_boot_device_applies_at_reboot(self):
        # Ironic's deploy flow: a one-time device set while running, then a
        # reboot. Nothing here depends on the transport.
        node = self.create_node()
        self._power(node, states.POWER_ON)
        with self.task(node) as task:
            task.driver.management.set_boot_device(task, boot_devices.CDROM,
                                                   persistent=False)
        self.assertEqual(['network'], base.boot_order(self.xml(flags=0)))

        self._power(node, states.REBOOT)

        self.assertEqual(['cdrom', 'network'],
                         base.boot_order(self.xml(flags=0)))
        self.assertEqual(['network'], base.boot_order(self.xml()))


class SSHTestCase(_RemoteScenarios, base.FunctionalTestCase):
    """qemu+ssh with driver_info ssh_key_filename."""

    transport = 'ssh'

    def _assert_invalid_key_file(self, path):
        node = self.create_node(ssh_key_filename=path)
        with self.task(node, shared=True) as task:
            for interface in (task.driver.power, task.driver.management):
                exc = self.assertRaises(exception.InvalidParameterValue,
                                        interface.validate, task)
                self.assertIn('Node %s: driver_info ssh_key_filename: %s '
                              'is not a readable file' % (node.uuid, path),
                              str(exc))

    def test_missing_key_file(self):
        self._assert_invalid_key_file(
            str(self.daemon.base_dir / 'no-such-key'))

    def test_key_file_that_is_a_directory(self):
        self._assert_invalid_key_file(str(self.daemon.base_dir))

    def test_key_that_sshd_refuses(self):
        # The host key is a readable private key that sshd does not accept.
        refused = self.daemon.sshd.dir / 'ssh_host_ed25519_key'
        node = self.create_node(ssh_key_filename=str(refused),
                                **self.credentials())
        self.assert_fails(node, exception.TemporaryFailure,
                          'Permission denied (publickey)',
                          'Check driver_info libvirt_uri, ssh_key_filename')


class TCPTestCase(_RemoteScenarios, base.FunctionalTestCase):
    """qemu+tcp with SASL (DIGEST-MD5)."""

    transport = 'tcp'

    def test_wrong_sasl_password(self):
        node = self.create_node(sasl_password=base.WRONG_PASSWORD)
        self.assert_fails(node, exception.InvalidParameterValue,
                          'authentication failed',
                          'Check driver_info sasl_username and '
                          'sasl_password')


class TLSTestCase(_RemoteScenarios, base.FunctionalTestCase):
    """qemu+tls with driver_info tls_pki_path."""

    transport = 'tls'

    def test_missing_pki_directory(self):
        path = str(self.daemon.base_dir / 'no-such-pki')
        node = self.create_node(tls_pki_path=path)
        with self.task(node, shared=True) as task:
            exc = self.assertRaises(exception.InvalidParameterValue,
                                    task.driver.power.validate, task)
        self.assertIn('Node %s: driver_info tls_pki_path: %s is not a '
                      'readable directory' % (node.uuid, path), str(exc))
