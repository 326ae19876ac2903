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

"""The serial console in a real standalone Ironic: what a user types.

``baremetal node console`` on real QEMU domains reached over qemu+tcp
with SASL.
"""

import socket

import libvirt
import pytest

from tests.e2e import conftest


def _console_in_use(domain):
    """Whether libvirt reports a session on the domain's serial console."""
    stream = domain.connect().newStream(0)
    try:
        domain.openConsole(None, stream, 0)
    except libvirt.libvirtError as exc:
        return 'active console session' in str(exc).lower()
    stream.abort()
    return False


def test_console_enable_show_connect_disable(nodes, qemu):
    domain = qemu.create()
    node = nodes.create('libvirt', qemu.driver_info(domain))['uuid']
    assert nodes.api(node)['console_interface'] == 'libvirt-socat'
    nodes.manage(node)
    nodes.power(node, 'on')

    with nodes.console_enabled(node) as info:
        assert info['type'] == 'socat'
        host, port = info['url'][len('tcp://'):].split(':')
        assert info['url'] == 'tcp://127.0.0.1:%s' % port
        assert not _console_in_use(domain)
        with socket.create_connection((host, int(port)), timeout=5) as conn:
            # The session opens the domain's console through libvirt.
            conftest.wait('console session', lambda: _console_in_use(domain))
            conn.settimeout(1)
            with pytest.raises(socket.timeout):
                # Open and quiet: no end of file without a guest OS.
                conn.recv(1)
            conn.sendall(b'\r')
    conftest.wait('console session end', lambda: not _console_in_use(domain))
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, int(port)), timeout=5).close()
