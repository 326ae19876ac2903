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

"""Beyond power: virtual media, inspection and the console on real QEMU.

The hypervisor is reached over qemu+tcp with SASL, so that nothing relies
on the conductor and the hypervisor sharing a disk.
"""

import io
import json
import socket
import xml.etree.ElementTree as ET

import fixtures
from ironic.common import states
from ironic import objects
import libvirt
import pytest

from ironic_libvirt.cmd import main
from tests.functional import base
from tests.harness import system
from tests.harness import web

ISO_BYTES = b'\x00' * 32768 + b'\x01CD001\x01' + b'\x00' * 4089


@pytest.fixture(scope='class')
def image_server(request, tmp_path_factory):
    """An HTTP server with one image, ``image.iso``, for the class."""
    root = tmp_path_factory.mktemp('images')
    (root / 'image.iso').write_bytes(ISO_BYTES)
    with web.serving(root) as url:
        request.cls.image_url = url + '/image.iso'
        yield url


def cdrom_source(xml):
    for disk in ET.fromstring(xml).iterfind('devices/disk'):
        if disk.get('device') == 'cdrom':
            source = disk.find('source')
            return None if source is None else source.get('file')
    raise AssertionError('no cdrom')


@pytest.mark.usefixtures('image_server')
class TestBeyondPowerTCP(base.FunctionalTestCase):

    transport = 'tcp'
    # The console runs socat, a real subprocess.
    block_execute = False

    def setUp(self):
        super().setUp()
        self.config(enabled_inspect_interfaces=['libvirt', 'no-inspect'],
                    enabled_console_interfaces=['libvirt-socat',
                                                'no-console'])
        self.config(terminal_pid_dir=self.useFixture(
            fixtures.TempDir()).path, socat_address='127.0.0.1',
            group='console')

    def _pool(self):
        return self.observer.storagePoolLookupByName('ironic-libvirt-media')

    def test_virtual_media_live_and_persistent(self):
        node = self.create_node()
        with self.task(node) as task:
            task.driver.power.set_power_state(task, states.POWER_ON,
                                              timeout=10)
            mgmt = task.driver.management
            mgmt.attach_virtual_media(task, 'cdrom', self.image_url)
            path = self._pool().storageVolLookupByName(
                '%s-sda.iso' % self.observer.lookupByName(
                    self.domain_name()).UUIDString()).path()
            self.assertEqual(path, cdrom_source(self.xml(flags=0)))
            self.assertEqual(path, cdrom_source(self.xml()))
            # /var/lib/libvirt of the daemons is the harness's lib/.
            self.assertEqual(ISO_BYTES, (
                self.daemon.base_dir / 'lib' / path[len('/var/lib/libvirt/'):]
            ).read_bytes())
            self.assertEqual([{'media_types': ['cdrom'], 'inserted': True,
                               'image': self.image_url}],
                             mgmt.get_virtual_media(task))

            # A second attach replaces the medium in place.
            mgmt.attach_virtual_media(task, 'cdrom', self.image_url)
            self.assertEqual(path, cdrom_source(self.xml(flags=0)))

            mgmt.detach_virtual_media(task)
            self.assertIsNone(cdrom_source(self.xml(flags=0)))
            self.assertIsNone(cdrom_source(self.xml()))
            self.assertEqual([], self._pool().listVolumes())
            self.assertEqual([{'media_types': ['cdrom'], 'inserted': False,
                               'image': None}],
                             mgmt.get_virtual_media(task))
        self.assert_no_secret('')

    def test_virtual_media_on_a_shut_off_domain(self):
        node = self.create_node()
        with self.task(node) as task:
            task.driver.management.attach_virtual_media(task, 'cdrom',
                                                        self.image_url)
            self.assertIsNotNone(cdrom_source(self.xml()))
            task.driver.power.set_power_state(task, states.POWER_ON,
                                              timeout=10)
            self.assertEqual(cdrom_source(self.xml()),
                             cdrom_source(self.xml(flags=0)))
            task.driver.management.detach_virtual_media(task, ['cdrom'])
            self.assertIsNone(cdrom_source(self.xml(flags=0)))

    def test_inspection_creates_ports_once(self):
        node = self.create_node()
        node.inspect_interface = 'libvirt'
        node.save()
        for _attempt in range(2):
            with self.task(node) as task:
                self.assertEqual(
                    states.MANAGEABLE,
                    task.driver.inspect.inspect_hardware(task))
        node.refresh()
        self.assertEqual({'cpus': 1, 'memory_mb': 32, 'local_gb': 0,
                          'cpu_arch': 'x86_64',
                          'capabilities': 'boot_mode:bios'},
                         node.properties)
        self.assertEqual([self.mac()],
                         [p.address for p in objects.Port.list_by_node_id(
                             self.context, node.id)])

    def test_inspection_disk_capacity(self):
        name = self.domain_name()
        dom = self.observer.lookupByName(name)
        disk = self.daemon.base_dir / ('%s.img' % name)
        with open(disk, 'r+b') as image:
            image.truncate(5 * 1024 ** 3)
        try:
            node = self.create_node()
            node.inspect_interface = 'libvirt'
            node.save()
            with self.task(node) as task:
                task.driver.inspect.inspect_hardware(task)
            node.refresh()
            self.assertEqual(5, node.properties['local_gb'])
            self.assertEqual(libvirt.VIR_DOMAIN_SHUTOFF, dom.state()[0])
        finally:
            disk.unlink()

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


def _cli_json(*args):
    stdout, stderr = io.StringIO(), io.StringIO()
    rc = main.IronicLibvirtApp(stdout=stdout, stderr=stderr).run(
        list(args) + ['-f', 'json'])
    assert rc == 0, stderr.getvalue()
    return json.loads(stdout.getvalue())


@pytest.mark.parametrize('strategy', ['full', 'quick'])
def test_create_fleet_clones_that_boot(clean_libvirtd, strategy):
    uri = clean_libvirtd.uri_unix
    pool = ['--pool', 'fleet-%s' % strategy, '--pool-path',
            '/var/lib/libvirt/images/fleet-%s' % strategy]
    base_rows = _cli_json('create-fleet', '--uri', uri, '--count', '1',
                          '--prefix', 'base-%s' % strategy, '--memory-mib',
                          '32', '--disk-gib', '1', *pool)
    rows = _cli_json('create-fleet', '--uri', uri, '--count', '2',
                     '--prefix', 'clone-%s' % strategy, '--base',
                     base_rows[0]['Name'], '--clone-strategy', strategy,
                     *pool)
    assert [r['Name'] for r in rows] == ['clone-%s-0' % strategy,
                                         'clone-%s-1' % strategy]
    conn = libvirt.open(uri)
    try:
        dom = conn.lookupByName(rows[1]['Name'])
        source = ET.fromstring(dom.XMLDesc(0)).find(
            "devices/disk[@device='disk']/source").get('file')
        volume = conn.storageVolLookupByPath(source)
        backing = ET.fromstring(volume.XMLDesc(0)).find('backingStore')
        assert (backing is not None) == (strategy == 'quick')
        assert source.endswith('clone-%s-1.qcow2' % strategy)
        dom.create()
        assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        listed = {r['Name']: r for r in _cli_json('domains', '--uri', uri)}
        assert listed[rows[1]['Name']]['State'] == 'running'
        assert listed[rows[1]['Name']]['MAC addresses'] == rows[1][
            'MAC addresses']
    finally:
        conn.close()
