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

"""The libvirt-graphical console on a real QEMU domain.

The test speaks RFB (RFC 6143) itself, so that what it proves does not
rest on the driver's own client: the domain's VNC port accepts the
password of the current enable and refuses a wrong one, and the relay
behind Ironic's socat serves the screen without a password.
"""

import socket
import struct

from cryptography.hazmat.decrepit.ciphers import algorithms
from cryptography.hazmat.primitives.ciphers import Cipher
from cryptography.hazmat.primitives.ciphers import modes
import fixtures
from ironic.common import states
import libvirt

from ironic_libvirt.virt import domain_xml
from tests.functional import base
from tests.harness import system

LIVE_SECURE = libvirt.VIR_DOMAIN_XML_SECURE
WRONG = 'wrong-pw'


def _recv(sock, count):
    data = b''
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        assert chunk, 'the VNC server closed the connection'
        data += chunk
    return data


def _mirror(byte):
    return int('{:08b}'.format(byte)[::-1], 2)


def rfb_login(port, password):
    """Log in to a VNC server; True if it accepts ``password``.

    RFB 3.8 with security type 2 (VNC authentication): DES of the
    16-byte challenge, keyed with the password with each byte's bits
    mirrored.
    """
    with socket.create_connection(('127.0.0.1', port), timeout=30) as sock:
        assert _recv(sock, 12) == b'RFB 003.008\n'
        sock.sendall(b'RFB 003.008\n')
        types = _recv(sock, _recv(sock, 1)[0])
        assert 2 in types, types
        sock.sendall(b'\x02')
        key = bytes(_mirror(b) for b in password.encode().ljust(8, b'\0'))
        # Three equal keys: TripleDES is then single DES.
        des = Cipher(algorithms.TripleDES(key * 3), modes.ECB()).encryptor()
        sock.sendall(des.update(_recv(sock, 16)) + des.finalize())
        return struct.unpack('!I', _recv(sock, 4))[0] == 0


def rfb_screen_size(port):
    """Through a VNC server without password: the screen's size."""
    with socket.create_connection(('127.0.0.1', port), timeout=60) as sock:
        assert _recv(sock, 12) == b'RFB 003.008\n'
        sock.sendall(b'RFB 003.008\n')
        assert _recv(sock, _recv(sock, 1)[0]) == b'\x01'
        sock.sendall(b'\x01')
        assert _recv(sock, 4) == bytes(4)
        sock.sendall(b'\x01')  # ClientInit: shared
        return struct.unpack('!HH', _recv(sock, 4))


class TestGraphicalConsole(base.FunctionalTestCase):

    transport = 'unix'
    # The relay runs under socat, a real subprocess.
    block_execute = False

    def setUp(self):
        super().setUp()
        self.config(enabled_console_interfaces=['libvirt-graphical',
                                                'no-console'])
        port = system.free_port()
        self.config(terminal_pid_dir=self.useFixture(
            fixtures.TempDir()).path, socat_address='127.0.0.1',
            port_range='%d:%d' % (port, port + 1), group='console')
        self.config(public_url='http://127.0.0.1:6090/vnc_lite.html',
                    group='vnc')
        self.node = self.create_node()
        self.node.console_interface = 'libvirt-graphical'
        self.node.save()

    def _live_vnc(self):
        return domain_xml.vnc(self.xml(flags=LIVE_SECURE))

    def _set_console(self, enabled):
        with self.task(self.node) as task:
            if enabled:
                task.driver.console.start_console(task)
            else:
                task.driver.console.stop_console(task)
            return dict(task.node.driver_internal_info)

    def test_password_per_enable_and_relay(self):
        info = self._set_console(True)
        self.addCleanup(self._set_console, False)
        with self.task(self.node) as task:
            task.driver.power.set_power_state(task, states.POWER_ON,
                                              timeout=30)
        first = self._live_vnc()
        self.assertEqual('127.0.0.1', first['listen'])
        self.assertTrue(rfb_login(first['port'], first['password']))
        self.assertFalse(rfb_login(first['port'], WRONG))
        # The relay offers the screen without a password.
        width, height = rfb_screen_size(info['vnc_port'])
        self.assertGreater(width * height, 0)

        # Enabled again while running: a new password, changed live.
        self._set_console(True)
        second = self._live_vnc()
        self.assertEqual(first['port'], second['port'])
        self.assertNotEqual(first['password'], second['password'])
        self.assertFalse(rfb_login(second['port'], first['password']))
        self.assertTrue(rfb_login(second['port'], second['password']))

        # Disabled: the running server accepts no password, not even the
        # one it had; the relay is gone.
        info = self._set_console(False)
        self.assertNotIn('vnc_port', info)
        self.assertFalse(rfb_login(second['port'], second['password']))
        self.assertIsNotNone(self._live_vnc())
        for password in (first['password'], second['password']):
            self.assertNotIn(password, self.logs.output)
