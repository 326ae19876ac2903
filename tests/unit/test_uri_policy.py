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

"""URI policy and URI building of the core (no Ironic, no libvirt call)."""

import os
import tempfile
import unittest

from ironic_libvirt.virt import connection
from ironic_libvirt.virt import errors

Params = connection.ConnectionParams


class CheckURITestCase(unittest.TestCase):

    def check(self, uri, **kw):
        allow_test = kw.pop('allow_test_driver', False)
        dirs = kw.pop('allowed_path_dirs', ())
        connection.check_uri(Params(uri=uri, **kw),
                             allow_test_driver=allow_test,
                             allowed_path_dirs=dirs)

    def refused(self, uri, parameter, **kw):
        with self.assertRaises(errors.UnsafeURI) as ctx:
            self.check(uri, **kw)
        self.assertEqual(parameter, ctx.exception.parameter, uri)
        return ctx.exception

    def test_accepted(self):
        for uri in ['qemu:///system', 'qemu:///session',
                    'qemu+unix:///system',
                    'qemu+ssh://root@hv1.example.com/system',
                    'qemu+ssh://root@10.0.0.1:2222/system'
                    '?no_verify=1&no_tty=1',
                    'qemu+libssh2://u@hv/system?sshauth=privkey,agent',
                    'qemu+tcp://hv:16509/system', 'qemu+tls://[::1]/system',
                    'qemu://hv/system']:
            self.check(uri)

    def test_refused_parameters(self):
        for uri, parameter in [
                ('qemu+ssh://hv/system?command=/bin/sh', 'command'),
                ('qemu+ssh://hv/system?netcat=/tmp/x', 'netcat'),
                ('qemu+ssh://hv/system?socket=/tmp/s', 'socket'),
                ('qemu+ssh://hv/system?keyfile=/root/.ssh/id', 'keyfile'),
                ('qemu+tls://hv/system?pkipath=/etc', 'pkipath'),
                ('qemu+ssh://hv/system?known_hosts=/etc/shadow',
                 'known_hosts'),
                ('qemu+tcp://hv/system?name=test:///etc/passwd', 'name'),
                ('qemu+ssh://hv/system?no_verify=yes', 'no_verify'),
                ('qemu+ssh://hv/system?sshauth=gssapi', 'sshauth'),
                ('qemu+ext:///system?command=/bin/sh', 'libvirt_uri'),
                ('xen:///system', 'libvirt_uri'),
                ('qemu:///embed?root=/tmp', 'libvirt_uri'),
                ('qemu+ssh://-oProxyCommand=x/system', 'libvirt_uri'),
                ('qemu+ssh://-lroot@hv/system', 'libvirt_uri'),
                ('qemu+ssh://root:pw@hv/system', 'libvirt_uri'),
                ('qemu+unix://hv/system', 'libvirt_uri'),
                ('test:///default', 'libvirt_uri')]:
            self.refused(uri, parameter)

    def test_password_is_not_echoed(self):
        exc = self.refused('qemu+ssh://root:hunter2@hv/system', 'libvirt_uri')
        self.assertNotIn('hunter2', str(exc))

    def test_test_driver_when_allowed(self):
        self.check('test:///default', allow_test_driver=True)
        self.refused('test:///default?x=1', 'libvirt_uri',
                     allow_test_driver=True)

    def test_key_file_only_for_ssh_and_absolute(self):
        self.refused('qemu+tcp://hv/system', 'ssh_key_filename',
                     ssh_key_filename='/k')
        self.refused('qemu+ssh://hv/system', 'ssh_key_filename',
                     ssh_key_filename='relative/key')
        self.refused('qemu+ssh://hv/system', 'tls_pki_path',
                     tls_pki_path='/etc/pki')
        self.check('qemu+tls://hv/system', tls_pki_path='/etc/pki')

    def test_paths_confined_to_allowed_dirs(self):
        with tempfile.TemporaryDirectory() as allowed:
            inside = os.path.join(allowed, 'id_ed25519')
            self.check('qemu+ssh://hv/system', ssh_key_filename=inside,
                       allowed_path_dirs=[allowed])
            self.refused('qemu+ssh://hv/system', 'ssh_key_filename',
                         ssh_key_filename=os.path.join(allowed, '..', 'k'),
                         allowed_path_dirs=[allowed])
            os.symlink('/etc/shadow', os.path.join(allowed, 'link'))
            self.refused('qemu+ssh://hv/system', 'ssh_key_filename',
                         ssh_key_filename=os.path.join(allowed, 'link'),
                         allowed_path_dirs=[allowed])


class EffectiveURITestCase(unittest.TestCase):

    def test_key_file_merged_with_or_without_query(self):
        self.assertEqual(
            'qemu+ssh://root@hv/system?keyfile=/etc/ironic/id%20rsa',
            Params('qemu+ssh://root@hv/system',
                   ssh_key_filename='/etc/ironic/id rsa').effective_uri)
        self.assertEqual(
            'qemu+ssh://root@hv/system?no_tty=1&keyfile=/k',
            Params('qemu+ssh://root@hv/system?no_tty=1',
                   ssh_key_filename='/k').effective_uri)

    def test_pki_path_merged(self):
        self.assertEqual(
            'qemu+tls://hv/system?pkipath=/etc/pki/x',
            Params('qemu+tls://hv/system',
                   tls_pki_path='/etc/pki/x').effective_uri)

    def test_no_paths_no_change(self):
        self.assertEqual('qemu:///system',
                         Params('qemu:///system').effective_uri)
