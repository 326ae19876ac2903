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

"""The libvirt-socat console interface on real QEMU.

The hypervisor is reached over qemu+tcp with SASL, so that nothing relies
on the conductor and the hypervisor sharing a disk.
"""

import socket

import fixtures
from ironic.common import states
import libvirt

from tests.functional import base
from tests.harness import system


class TestConsoleTCP(base.FunctionalTestCase):

    transport = 'tcp'
    # The console runs socat, a real subprocess.
    block_execute = False

    def setUp(self):
        super().setUp()
        self.config(enabled_console_interfaces=['libvirt-socat',
                                                'no-console'])
        self.config(terminal_pid_dir=self.useFixture(
            fixtures.TempDir()).path, socat_address='127.0.0.1',
            group='console')

    def _console_taken(self):
        stream = self.observer.newStream(0)
        try:
            self.observer.lookupByName(self.domain_name()).openConsole(
                None, stream, 0)
        except libvirt.libvirtError as exc:
            return 'active console session' in str(exc).lower()
        stream.abort()
        return False

    def test_console_over_tcp_sasl(self):
        node = self.create_node(libvirt_console_port=system.free_port())
        node.console_interface = 'libvirt-socat'
        node.save()
        with self.task(node) as task:
            task.driver.power.set_power_state(task, states.POWER_ON,
                                              timeout=10)
            task.driver.console.start_console(task)
            self.addCleanup(self._stop_console, node)
            url = task.driver.console.get_console(task)
        port = node.driver_info['libvirt_console_port']
        self.assertEqual({'type': 'socat',
                          'url': 'tcp://127.0.0.1:%d' % port}, url)
        self.assertFalse(self._console_taken())
        with socket.create_connection(('127.0.0.1', port), timeout=5) as s:
            # The session opens the domain's console through libvirt.
            system.wait_for(self._console_taken, 10, 'a console session')
            s.sendall(b'\r')
        system.wait_for(lambda: not self._console_taken(), 10,
                        'the session to end')
        self.assert_no_secret('')

    def _stop_console(self, node):
        with self.task(node) as task:
            task.driver.console.stop_console(task)
