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

"""``ironic-libvirt tls-keys``: the files, their modes, the certificates."""

import contextlib
import io
import ipaddress
import logging
import os
import pathlib
import stat
import tempfile
import unittest

from cryptography.hazmat.primitives import serialization
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.oid import NameOID

from ironic_libvirt.cmd import main
from ironic_libvirt.lab import tls_keys

LAYOUT = {
    'etc/pki/CA/cacert.pem': 0o644,
    'etc/pki/CA/private/cakey.pem': 0o600,
    'etc/pki/libvirt/servercert.pem': 0o644,
    'etc/pki/libvirt/private/serverkey.pem': 0o600,
    'etc/ironic/libvirt-pki/cacert.pem': 0o644,
    'etc/ironic/libvirt-pki/clientcert.pem': 0o644,
    'etc/ironic/libvirt-pki/clientkey.pem': 0o600,
}
DIRECTORIES = {
    'etc': 0o755, 'etc/pki': 0o755, 'etc/pki/CA': 0o755,
    'etc/pki/CA/private': 0o700, 'etc/pki/libvirt': 0o755,
    'etc/pki/libvirt/private': 0o700, 'etc/ironic': 0o755,
    'etc/ironic/libvirt-pki': 0o700,
}


@contextlib.contextmanager
def _umask(mask):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _cert(path):
    return x509.load_pem_x509_certificate(path.read_bytes())


def _cn(cert):
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


class TLSKeysTestCase(unittest.TestCase):

    def setUp(self):
        super().setUp()
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.root = pathlib.Path(tmp.name)

    def make(self, **kwargs):
        values = dict(hosts=('hv1.example.com', 'hv1'),
                      ips=(ipaddress.ip_address('192.0.2.10'),
                           ipaddress.ip_address('2001:db8::10')),
                      root=self.root)
        values.update(kwargs)
        return tls_keys.make(tls_keys.Request(**values))

    def mode(self, relative):
        return stat.S_IMODE((self.root / relative).stat().st_mode)

    def test_layout_and_modes_whatever_the_umask(self):
        for mask in (0o000, 0o077):
            with self.subTest(umask=oct(mask)), _umask(mask):
                root = self.root / oct(mask)
                result = self.make(root=root)
                self.assertEqual({'/' + p: root / p for p in LAYOUT},
                                 result.files)
                for relative, mode in {**LAYOUT, **DIRECTORIES}.items():
                    self.assertEqual(
                        oct(mode),
                        oct(stat.S_IMODE((root / relative).stat().st_mode)),
                        relative)
                # Nothing else: no temporary files left behind.
                written = {str(p.relative_to(root))
                           for p in root.rglob('*') if p.is_file()}
                self.assertEqual(set(LAYOUT), written)

    def test_existing_directories_are_left_alone(self):
        (self.root / 'etc').mkdir(mode=0o750)
        (self.root / 'etc').chmod(0o750)
        self.make()
        self.assertEqual(0o750, self.mode('etc'))

    def test_certificates(self):
        self.make()
        ca = _cert(self.root / tls_keys.CA_CERT)
        server = _cert(self.root / tls_keys.SERVER_CERT)
        client = _cert(self.root / tls_keys.CLIENT_DIR / 'clientcert.pem')
        self.assertEqual(ca.public_bytes(serialization.Encoding.PEM),
                         (self.root / tls_keys.CLIENT_DIR
                          / 'cacert.pem').read_bytes())
        self.assertTrue(ca.extensions.get_extension_for_class(
            x509.BasicConstraints).value.ca)
        for cert in (server, client):
            cert.verify_directly_issued_by(ca)
            self.assertFalse(cert.extensions.get_extension_for_class(
                x509.BasicConstraints).value.ca)
            usage = cert.extensions.get_extension_for_class(
                x509.KeyUsage).value
            self.assertTrue(usage.digital_signature)
            self.assertTrue(usage.key_encipherment)

        self.assertEqual('hv1.example.com', _cn(server))
        names = server.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value
        self.assertEqual(['hv1.example.com', 'hv1'],
                         names.get_values_for_type(x509.DNSName))
        self.assertEqual([ipaddress.ip_address('192.0.2.10'),
                          ipaddress.ip_address('2001:db8::10')],
                         names.get_values_for_type(x509.IPAddress))
        self.assertEqual([ExtendedKeyUsageOID.SERVER_AUTH],
                         list(server.extensions.get_extension_for_class(
                             x509.ExtendedKeyUsage).value))

        self.assertEqual('ironic-conductor', _cn(client))
        self.assertEqual([ExtendedKeyUsageOID.CLIENT_AUTH],
                         list(client.extensions.get_extension_for_class(
                             x509.ExtendedKeyUsage).value))

    def test_ip_only_server_is_named_by_its_address(self):
        result = self.make(hosts=())
        self.assertEqual('192.0.2.10',
                         _cn(_cert(self.root / tls_keys.SERVER_CERT)))
        self.assertEqual('qemu+tls://192.0.2.10/system',
                         result.driver_info()['libvirt_uri'])
        result = self.make(hosts=(), ips=(ipaddress.ip_address('::1'),),
                           ca='replace')
        self.assertEqual('qemu+tls://[::1]/system',
                         result.driver_info()['libvirt_uri'])

    def test_nothing_to_name_the_server(self):
        self.assertRaisesRegex(tls_keys.TLSKeysError, 'host name or an IP',
                               self.make, hosts=(), ips=())
        self.assertEqual([], list(self.root.iterdir()))

    def test_existing_ca_key_is_refused(self):
        self.make()
        ca_key = (self.root / tls_keys.CA_KEY).read_bytes()
        server = (self.root / tls_keys.SERVER_CERT).read_bytes()

        with self.assertRaises(tls_keys.TLSKeysError) as caught:
            self.make()

        message = str(caught.exception)
        self.assertIn('a CA key exists at %s' % (self.root / tls_keys.CA_KEY),
                      message)
        self.assertIn('(--reuse-ca)', message)
        self.assertIn('(--replace-ca)', message)
        self.assertEqual(ca_key, (self.root / tls_keys.CA_KEY).read_bytes())
        self.assertEqual(server,
                         (self.root / tls_keys.SERVER_CERT).read_bytes())

    def test_reuse_signs_with_the_same_ca(self):
        self.make()
        ca_key = (self.root / tls_keys.CA_KEY).read_bytes()
        ca = _cert(self.root / tls_keys.CA_CERT)

        result = self.make(hosts=('hv2',), ca='reuse')

        self.assertFalse(result.ca_created)
        self.assertNotIn('/' + tls_keys.CA_KEY, result.files)
        self.assertEqual(ca_key, (self.root / tls_keys.CA_KEY).read_bytes())
        server = _cert(self.root / tls_keys.SERVER_CERT)
        self.assertEqual('hv2', _cn(server))
        server.verify_directly_issued_by(ca)

    def test_reuse_without_a_ca(self):
        self.assertRaisesRegex(tls_keys.TLSKeysError,
                               'cannot reuse the CA in .*cacert.pem',
                               self.make, ca='reuse')

    def test_reuse_with_a_mismatched_ca(self):
        self.make()
        other = self.root / 'other'
        self.make(root=other)
        (self.root / tls_keys.CA_KEY).write_bytes(
            (other / tls_keys.CA_KEY).read_bytes())
        self.assertRaisesRegex(tls_keys.TLSKeysError,
                               'cacert.pem does not belong to .*cakey.pem',
                               self.make, ca='reuse')

    def test_replace_makes_a_new_ca(self):
        self.make()
        old = (self.root / tls_keys.CA_KEY).read_bytes()
        self.make(ca='replace')
        self.assertNotEqual(old, (self.root / tls_keys.CA_KEY).read_bytes())
        _cert(self.root / tls_keys.SERVER_CERT).verify_directly_issued_by(
            _cert(self.root / tls_keys.CA_CERT))

    def test_unwritable_root(self):
        blocker = self.root / 'file'
        blocker.write_text('')
        self.assertRaisesRegex(tls_keys.TLSKeysError,
                               'cannot write the keys below .*file',
                               self.make, root=blocker)

    def test_names_libvirtd_could_not_match(self):
        for bad in ('a,b', 'a*', 'CN=x', ' '):
            self.assertRaises(ValueError, tls_keys.check_name, bad, 'cn')


class TLSKeysCommandTestCase(unittest.TestCase):

    def setUp(self):
        super().setUp()
        # Ironic's DB fixture (other test modules) runs Alembic's
        # fileConfig, which disables every logger existing then, the
        # command line's included; its errors are what is checked here.
        for name in (main.IronicLibvirtApp.NAME, 'cliff'):
            logging.getLogger(name).disabled = False
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.root = pathlib.Path(tmp.name)

    def run_cli(self, *args):
        self.stdout, self.stderr = io.StringIO(), io.StringIO()
        app = main.IronicLibvirtApp(stdout=self.stdout, stderr=self.stderr)
        try:
            return app.run(['tls-keys', '--output', str(self.root), *args])
        except SystemExit as exc:  # argparse's usage errors
            return exc.code

    def test_prints_libvirtd_conf_and_driver_info(self):
        self.assertEqual(0, self.run_cli('--host', 'hv1.example.com',
                                         '--client-cn', 'conductor-1'))
        out = self.stdout.getvalue()
        for line in ('listen_tls = 1',
                     'key_file = "/etc/pki/libvirt/private/serverkey.pem"',
                     'cert_file = "/etc/pki/libvirt/servercert.pem"',
                     'ca_file = "/etc/pki/CA/cacert.pem"',
                     'tls_allowed_dn_list = '
                     '["O=ironic-libvirt lab,CN=conductor-1"]',
                     '--driver-info libvirt_uri='
                     'qemu+tls://hv1.example.com/system',
                     '--driver-info tls_pki_path=/etc/ironic/libvirt-pki',
                     '/etc/pki/libvirt/private/serverkey.pem   0600'):
            self.assertIn(line, out)

    def test_client_dir(self):
        self.assertEqual(0, self.run_cli('--ip', '127.0.0.1',
                                         '--client-dir', '/srv/pki'))
        self.assertTrue((self.root / 'srv/pki/clientkey.pem').is_file())
        self.assertIn('tls_pki_path=/srv/pki', self.stdout.getvalue())

    def test_usage_errors(self):
        for args, message in (
                ((), 'give the hypervisor a --host or an --ip'),
                (('--ip', 'hv1'), "'hv1' is not an IP address"),
                # cryptography takes only ASCII (A-label) host names.
                (('--host', 'b\u00fccher'), "--host 'b\u00fccher': DNSName"),
                (('--host', 'hv,1'), '--host must not contain ,'),
                (('--host', 'hv1', '--client-cn', 'a,b'),
                 '--client-cn must not contain ,'),
                (('--host', 'hv1', '--client-dir', 'pki'),
                 "'pki' is not an absolute path"),
                (('--host', 'hv1', '--days', '0'),
                 "'0' is not a number of days"),
                (('--host', 'hv1', '--reuse-ca', '--replace-ca'),
                 'not allowed with argument')):
            with self.subTest(args=args):
                stderr = io.StringIO()
                with contextlib.redirect_stderr(stderr):
                    self.assertEqual(2, self.run_cli(*args))
                self.assertIn(message, stderr.getvalue())
        self.assertEqual([], list(self.root.iterdir()))

    def test_existing_ca_fails_with_the_fix(self):
        self.assertEqual(0, self.run_cli('--host', 'hv1'))
        self.assertEqual(1, self.run_cli('--host', 'hv2'))
        self.assertIn('a CA key exists', self.stderr.getvalue())
        self.assertEqual(0, self.run_cli('--host', 'hv2', '--reuse-ca'))
