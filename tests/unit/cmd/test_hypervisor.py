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

"""``domains``, ``create-fleet`` and ``enroll-file`` on libvirt's test
driver."""

import os
from unittest import mock

import fixtures
import libvirt
import yaml

from ironic_libvirt.virt import errors
from tests.unit.cmd import base

URI = base.URI
BASE_VOLUME = ("<volume><name>base.qcow2</name><capacity>1048576</capacity>"
               "<target><format type='qcow2'/></target></volume>")
BASE_DOMAIN = """<domain type='test'><name>base</name><memory>1024</memory>
<os><type arch='x86_64'>hvm</type><boot dev='hd'/></os><devices>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
<source file='/default-pool/base.qcow2'/><target dev='vda'/></disk>
<interface type='network'><mac address='52:54:00:99:99:99'/>
<source network='default'/></interface></devices></domain>"""


class HypervisorTestCase(base.CLITestCase):

    def test_domains(self):
        rows = self.json_out('domains', '--uri', URI)
        self.assertEqual([{'Name': 'test', 'UUID': mock.ANY,
                           'State': 'running',
                           'MAC addresses': 'aa:bb:cc:dd:ee:ff',
                           'Boot device': 'hd', 'Firmware': 'bios'}], rows)

    def test_create_fleet_from_scratch(self):
        rows = self.json_out('create-fleet', '--uri', URI, '--count', '3',
                             '--prefix', 'rack', '--pool', 'default-pool',
                             '--memory-mib', '64', '--disk-gib', '2')
        self.assertEqual(['rack-0', 'rack-1', 'rack-2'],
                         [r['Name'] for r in rows])
        self.assertIn('created 3/3 (rack-2)', self.stderr.getvalue())
        dom = self.conn.lookupByName('rack-1')
        self.assertEqual(64 * 1024, dom.maxMemory())
        volume = self.conn.storageVolLookupByPath(
            '/default-pool/rack-1.qcow2')
        self.assertEqual(2 * 1024 ** 3, volume.info()[1])
        self.assertIn('rack-1.qcow2', dom.XMLDesc(0))
        # The same names again: refused, nothing created.
        self.assertEqual(1, self.run_cli(
            'create-fleet', '--uri', URI, '--count', '4', '--prefix', 'rack',
            '--pool', 'default-pool'))
        exc = self.assertRaises(errors.OperationFailed, self.create,
                                ['rack-2', 'rack-3'])
        self.assertIn('exist already: rack-2;', str(exc))
        self.assertRaises(libvirt.libvirtError, self.conn.lookupByName,
                          'rack-3')

    def _base(self):
        self.conn.storagePoolLookupByName('default-pool').createXML(
            BASE_VOLUME, 0)
        return self.conn.defineXML(BASE_DOMAIN)

    def test_create_fleet_quick_clones(self):
        self._base()
        rows = self.json_out('create-fleet', '--uri', URI, '--count', '2',
                             '--prefix', 'q', '--pool', 'default-pool',
                             '--base', 'base', '--clone-strategy', 'quick')
        self.assertEqual(['q-0', 'q-1'], [r['Name'] for r in rows])
        self.assertNotIn('52:54:00:99:99:99', rows[0]['MAC addresses'])
        overlay = self.conn.storageVolLookupByPath('/default-pool/q-0.qcow2')
        self.assertIn('<path>/default-pool/base.qcow2</path>',
                      overlay.XMLDesc(0))
        self.assertIn('/default-pool/q-0.qcow2',
                      self.conn.lookupByName('q-0').XMLDesc(0))

    def test_create_fleet_full_clones(self):
        self._base()
        rows = self.json_out('create-fleet', '--uri', URI, '--count', '1',
                             '--prefix', 'f', '--pool', 'default-pool',
                             '--base', 'base')
        self.assertEqual(['f-0'], [r['Name'] for r in rows])
        copy = self.conn.storageVolLookupByPath('/default-pool/f-0.qcow2')
        self.assertNotIn('backingStore', copy.XMLDesc(0))

    def test_quick_clone_of_a_running_base(self):
        self._base().create()
        exc = self.assertRaises(errors.OperationFailed, self.create, ['x'],
                                base='base', strategy='quick')
        self.assertIn('shut it off', str(exc))

    def test_clone_of_a_disk_outside_pools(self):
        self.conn.lookupByName('test').destroy()
        exc = self.assertRaises(errors.InvalidDomainXML, self.create, ['x'],
                                base='test')
        self.assertIn('not a volume of a storage pool', str(exc))

    def test_quick_clone_of_a_raw_base(self):
        self.conn.storagePoolLookupByName('default-pool').createXML(
            BASE_VOLUME.replace('qcow2', 'raw'), 0)
        self.conn.defineXML(BASE_DOMAIN.replace('qcow2', 'raw'))
        exc = self.assertRaises(errors.InvalidDomainXML, self.create, ['x'],
                                base='base', strategy='quick')
        self.assertIn('must be qcow2, not raw', str(exc))

    def test_unknown_base(self):
        self.assertRaises(errors.DomainNotFound, self.create, ['x'],
                          base='nope')

    def _enroll_file(self, *args):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'nodes.yaml')
        self.json_out('enroll-file', '--uri', URI, '--driver',
                      'pxe_libvirt_agent', '-o', path, *args)
        self.assertEqual(0o600, os.stat(path).st_mode & 0o777)
        with open(path) as source:
            return source.read()

    def test_enroll_file(self):
        document = yaml.safe_load(self._enroll_file())
        self.assertEqual([{
            'name': 'test', 'driver': 'pxe_libvirt_agent',
            'driver_info': {'libvirt_uri': URI, 'libvirt_domain': 'test'},
            'properties': {'cpus': 2, 'memory_mb': 8192, 'local_gb': 1023,
                           'cpu_arch': 'i686'},
            'ports': [{'address': 'aa:bb:cc:dd:ee:ff'}]}],
            document['nodes'])

    def test_enroll_file_takes_the_password_from_the_environment(self):
        self.useFixture(fixtures.EnvironmentVariable('PW', 'pw-s3cret'))
        document = yaml.safe_load(self._enroll_file(
            '--sasl-username', 'ironic', '--sasl-password-env', 'PW'))
        self.assertEqual({'libvirt_uri': URI, 'libvirt_domain': 'test',
                          'sasl_username': 'ironic',
                          'sasl_password': 'pw-s3cret'},
                         document['nodes'][0]['driver_info'])
        # Only the file (readable by its owner) holds the password.
        self.assertNotIn('pw-s3cret', self.stdout.getvalue())
        self.assertNotIn('pw-s3cret', self.stderr.getvalue())

    def test_enroll_file_narrows_an_existing_file(self):
        # A file left readable by all must not receive the password so.
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'nodes.json')
        with open(path, 'w') as old:
            old.write('{}')
        os.chmod(path, 0o644)
        self.useFixture(fixtures.EnvironmentVariable('PW', 'pw-s3cret'))
        self.json_out('enroll-file', '--uri', URI, '-o', path,
                      '--sasl-username', 'ironic', '--sasl-password-env', 'PW')
        self.assertEqual(0o600, os.stat(path).st_mode & 0o777)
        with open(path) as written:
            self.assertIn('pw-s3cret', written.read())

    def test_enroll_file_of_some_domains(self):
        self.create(['a', 'b'])
        nodes = yaml.safe_load(self._enroll_file('--domains', 'b', 'test'))
        self.assertEqual(['b', 'test'], [n['name'] for n in nodes['nodes']])


class UsageErrorTestCase(base.CLITestCase):
    """Input errors exit 2 through argparse and change nothing."""

    def test_password_variable_unset(self):
        self.useFixture(fixtures.EnvironmentVariable('PW'))
        for command in (['domains'], ['enroll-file', '-o', '/nonexistent'],
                        ['create-fleet', '--count', '1', '--prefix', 'x'],
                        ['console', '--domain', 'test']):
            message = self.usage_error(
                *command, '--uri', URI, '--sasl-username', 'u',
                '--sasl-password-env', 'PW')
            self.assertIn('needs the password in the environment variable '
                          'PW', message)
        self.assertRaises(libvirt.libvirtError, self.conn.lookupByName, 'x-0')

    def test_counts_and_sizes_are_positive(self):
        for option in ('--count', '--memory-mib', '--vcpus', '--disk-gib'):
            for value in ('0', '-1', 'many'):
                args = {'--count': '1', option: value}
                message = self.usage_error(
                    'create-fleet', '--uri', URI, '--prefix', 'x',
                    *[a for item in args.items() for a in item])
                self.assertIn('argument %s: %r is not an integer of at '
                              'least 1' % (option, value), message)
        self.assertRaises(libvirt.libvirtError, self.conn.lookupByName, 'x-0')

    def test_missing_required_option(self):
        self.assertIn('--uri', self.usage_error('domains'))


class FailureTestCase(base.CLITestCase):
    """A failed operation exits 1 with one line that names the fix."""

    def test_hypervisor_unreachable(self):
        # Nothing listens on port 1 of the loopback: refused at once.
        line = self.failure('domains', '--uri',
                            'qemu+tcp://127.0.0.1:1/system')
        self.assertIn('Connection refused', line)
        self.assertIn('Fix: check --uri', line)

    def test_unknown_domains(self):
        line = self.failure('enroll-file', '--uri', URI, '--domains', 'test',
                            'nope', '-o', '/nonexistent/never-written')
        self.assertEqual('no such domains on test:///default: nope. Fix: '
                         'list the domains with: ironic-libvirt domains '
                         '--uri test:///default.', line)

    def test_unwritable_output(self):
        line = self.failure('enroll-file', '--uri', URI,
                            '-o', '/nonexistent/nodes.json')
        self.assertIn('cannot write /nonexistent/nodes.json', line)
        self.assertIn('Fix: pass -o', line)

    def test_clashing_names(self):
        self.create(['rack-0'])
        line = self.failure('create-fleet', '--uri', URI, '--count', '2',
                            '--prefix', 'rack', '--pool', 'default-pool')
        self.assertIn('exist already: rack-0; choose another prefix', line)
        self.assertRaises(libvirt.libvirtError, self.conn.lookupByName,
                          'rack-1')

    def test_console_of_an_unknown_domain(self):
        line = self.failure('console', '--uri', URI, '--domain', 'nope')
        self.assertIn('nope', line)
        self.assertIn('Fix: list the domains', line)
