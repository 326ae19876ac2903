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

import contextlib
import os
from unittest import mock

import fixtures
import libvirt
import yaml

from ironic_libvirt.virt import connection
from ironic_libvirt.virt import errors
from ironic_libvirt.virt import fleet
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

    def create(self, names, **kwargs):
        params = connection.ConnectionParams(uri=URI)
        with contextlib.closing(
                connection.ConnectionCache(size=1).get(params)) as conn:
            return fleet.create(conn, names, 'default-pool', '/p', **kwargs)

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

    def test_enroll_file(self):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'nodes.yaml')
        with mock.patch.dict(os.environ, {'PW': 'secret'}):
            self.json_out('enroll-file', '--uri', URI, '--driver',
                          'pxe_libvirt_agent', '-o', path)
        with open(path) as source:
            document = yaml.safe_load(source)
        self.assertEqual(0o600, os.stat(path).st_mode & 0o777)
        self.assertEqual([{
            'name': 'test', 'driver': 'pxe_libvirt_agent',
            'driver_info': {'libvirt_uri': URI, 'libvirt_domain': 'test'},
            'properties': {'cpus': 2, 'memory_mb': 8192, 'local_gb': 1023,
                           'cpu_arch': 'i686'},
            'ports': [{'address': 'aa:bb:cc:dd:ee:ff'}]}],
            document['nodes'])
