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

"""``ironic-libvirt tls-keys`` output accepted and enforced by a real libvirtd.

The command writes a layout below a temporary root; a libvirtd of the
class's own listens with the server files and the ``tls_allowed_dn_list``
line the command printed. The driver then reaches it with
``tls_pki_path`` set to the conductor directory, by host name and by IP
address (both are in the certificate). A client certificate from another
CA, and one from the same CA with another common name, are refused.
"""

import io
import pathlib
import re
import shutil
import tempfile

from ironic.common import exception
from ironic.common import states
import libvirt
import pytest

from ironic_libvirt.cmd import main
from ironic_libvirt.lab import tls_keys
from tests.functional import base
from tests.harness import libvirtd as harness_libvirtd
from tests.harness import system
from tests.harness import tls


def _tls_keys(*args):
    """Run the command; return what it printed."""
    out = io.StringIO()
    rc = main.IronicLibvirtApp(stdout=out, stderr=io.StringIO()).run(
        ['tls-keys', *args])
    assert rc == 0, out.getvalue()
    return out.getvalue()


@pytest.fixture(scope='class')
def generated(request, hypervisor):
    """A libvirtd listening with what ``tls-keys`` made and printed."""
    root = pathlib.Path(tempfile.mkdtemp(prefix='ilv-tls-keys-'))
    try:
        printed = _tls_keys('--host', 'localhost', '--ip', '127.0.0.1',
                            '--output', str(root / 'lab'))
        allowed = re.search(r'tls_allowed_dn_list = \["(.*)"\]',
                            printed).group(1)
        lab = root / 'lab'
        files = tls.TLSFiles(
            pki_dir=lab / tls_keys.CLIENT_DIR,
            ca_file=lab / tls_keys.CA_CERT,
            cert_file=lab / tls_keys.SERVER_CERT,
            key_file=lab / tls_keys.SERVER_KEY,
            client_dn_pattern=allowed)
        with harness_libvirtd.Libvirtd(tls_files=files) as daemon:
            request.cls.daemon = daemon
            request.cls.observer = libvirt.open(daemon.uri_unix)
            request.cls.root = root
            try:
                yield daemon
            finally:
                request.cls.observer.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.usefixtures('generated')
class TLSKeysTestCase(base.FunctionalTestCase):

    transport = 'tls'

    def create_node(self, **info):
        # The base class's driver_info also reads the harness's sshd and
        # SASL listener, which this class's libvirtd does not run.
        values = {'libvirt_uri': 'qemu+tls://127.0.0.1:%d/system'
                                 % self.daemon.tls_port,
                  'tls_pki_path': str(self.daemon.tls.pki_dir),
                  'libvirt_domain': self.domain_name()}
        values.update(info)
        return self.add_node(values)

    def _power_on(self, node):
        with self.task(node) as task:
            task.driver.power.set_power_state(task, states.POWER_ON)
            return task.driver.power.get_power_state(task)

    def _pki_dir(self, name, client_from):
        """A tls_pki_path with another client's files.

        Its cacert.pem holds the lab's CA, which signed the server, and
        the CA of ``client_from``: libvirt's client checks its own
        certificate against it before connecting, and this way the
        refusal under test is the server's.
        """
        pki = self.root / name
        pki.mkdir(mode=0o700)
        (pki / 'cacert.pem').write_bytes(
            (self.daemon.tls.pki_dir / 'cacert.pem').read_bytes()
            + (client_from / 'cacert.pem').read_bytes())
        for pem in ('clientcert.pem', 'clientkey.pem'):
            shutil.copy(client_from / pem, pki)
        return pki

    def _assert_refused(self, node, reason):
        """The driver cannot connect; libvirtd logs ``reason`` for it."""
        log_offset = self.daemon.log_file.stat().st_size
        with self.task(node) as task:
            exc = self.assertRaises(
                exception.TemporaryFailure,
                task.driver.power.get_power_state, task)
        self.assertIn('Node %s' % node.uuid, str(exc))
        self.assertIn('tls_pki_path', str(exc))
        self.assertEqual(libvirt.VIR_DOMAIN_SHUTOFF, self.state())

        def logged():
            with open(self.daemon.log_file) as log:
                log.seek(log_offset)
                return reason in log.read()
        # libvirtd may log the refusal after the client has seen it.
        system.wait_for(logged, 30, 'libvirtd to log %r' % reason)

    def test_driver_connects_by_host_name_and_ip(self):
        port = self.daemon.tls_port
        by_name = self.create_node(
            libvirt_uri='qemu+tls://localhost:%d/system' % port)
        by_ip = self.create_node(
            libvirt_uri='qemu+tls://127.0.0.1:%d/system' % port)
        with self.task(by_name, shared=True) as task:
            self.assertEqual(states.POWER_OFF,
                             task.driver.power.get_power_state(task))

        self.assertEqual(states.POWER_ON, self._power_on(by_ip))

        self.assertEqual(libvirt.VIR_DOMAIN_RUNNING, self.state())

    def test_client_of_another_ca_is_refused(self):
        other = self.root / 'other'
        _tls_keys('--ip', '127.0.0.1', '--output', str(other))
        pki = self._pki_dir('foreign-client',
                            other / tls_keys.CLIENT_DIR)
        node = self.create_node(tls_pki_path=str(pki))

        self._assert_refused(node, "Failed to verify peer's certificate")

    def test_client_name_not_allowed_is_refused(self):
        # Same CA, another common name: only tls_allowed_dn_list stops it.
        lab = self.root / 'lab'
        _tls_keys('--ip', '127.0.0.1', '--output', str(lab), '--reuse-ca',
                  '--client-cn', 'intruder', '--client-dir', '/intruder')
        node = self.create_node(
            tls_pki_path=str(self._pki_dir('intruder-client',
                                           lab / 'intruder')))

        self._assert_refused(node, 'not on the list of allowed clients')
