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

"""The VNC relay's answers to its client, on libvirt's test driver."""

import os
import struct

from ironic_libvirt.virt import graphics
from ironic_libvirt.virt import locator
from tests.unit import base


class RelayTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.domain = locator.DomainLocator().by_ident(self.hypervisor(),
                                                       'node-0')
        # The client's side: what it sends, and what the relay answers.
        self.client_in, self.relay_in = self._pipe()
        self.relay_out, self.client_out = self._pipe()

    def _pipe(self):
        fds = os.pipe()
        self.addCleanup(self._close, fds)
        return fds

    @staticmethod
    def _close(fds):
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass  # closed by the test already

    def test_screen_unavailable_is_refused_in_rfb(self):
        # node-0 is shut off: no VNC server to relay.
        os.write(self.relay_in, graphics._RFB_VERSION)
        exc = self.assertRaises(graphics.RelayFailed, graphics.relay,
                                self.domain, self.client_in, self.client_out)
        self.assertIn('does not run with a VNC server', str(exc))
        answer = os.read(self.relay_out, 1024)
        reason = b'The screen of this machine is not available.'
        # Version, zero security types, then the reason (RFC 6143 7.1.2).
        self.assertEqual(graphics._RFB_VERSION + b'\0'
                         + struct.pack('!I', len(reason)) + reason, answer)

    def test_client_gone_before_the_refusal(self):
        # The client hangs up before saying its version: the relay still
        # fails with the reason the screen is unavailable.
        os.close(self.relay_in)
        exc = self.assertRaises(graphics.RelayFailed, graphics.relay,
                                self.domain, self.client_in, self.client_out)
        self.assertIn('does not run with a VNC server', str(exc))
        self.assertEqual(graphics._RFB_VERSION,
                         os.read(self.relay_out, 1024))
