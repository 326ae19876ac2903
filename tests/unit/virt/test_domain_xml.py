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

"""Virtual media of the management interface on libvirt's test driver.

The test driver cannot upload volumes or change a running domain's
devices: uploads and live changes are covered by the functional tests.
"""

from unittest import mock
import xml.etree.ElementTree as ET

from ironic.common import exception

from ironic_libvirt.drivers import exception as driver_exception
from ironic_libvirt.drivers import management
from ironic_libvirt.virt import domain_xml
from ironic_libvirt.virt import errors
from ironic_libvirt.virt import media
from tests.unit import base

DOMAIN_XML = '''<domain type='kvm'><name>d</name><os><type>hvm</type></os>
<devices>
  <disk type='file' device='disk'><source file='/d.qcow2'/>
    <target dev='vda'/></disk>
  <disk type='volume' device='cdrom'><driver name='qemu' type='raw'/>
    <source pool='p' volume='v'/><target dev='sda' bus='sata'/><readonly/>
  </disk>
  <disk type='file' device='cdrom'><target dev='sdb' bus='sata'/></disk>
</devices></domain>'''


class MediaXMLTestCase(base.TestCase):

    def test_targets_and_sources(self):
        self.assertEqual(['vda'], domain_xml.disk_targets(DOMAIN_XML))
        self.assertEqual(['sda', 'sdb'],
                         domain_xml.disk_targets(DOMAIN_XML, 'cdrom'))
        self.assertEqual('/d.qcow2', domain_xml.disk_source(DOMAIN_XML, 'vda'))
        self.assertEqual('p/v', domain_xml.disk_source(DOMAIN_XML, 'sda'))
        self.assertIsNone(domain_xml.disk_source(DOMAIN_XML, 'sdb'))

    def test_media_device_inserts_a_file(self):
        disk = ET.fromstring(domain_xml.media_device(DOMAIN_XML, 'sda',
                                                     '/pool/x.iso'))
        self.assertEqual(('disk', 'file', 'cdrom'),
                         (disk.tag, disk.get('type'), disk.get('device')))
        self.assertEqual([{'file': '/pool/x.iso'}],
                         [s.attrib for s in disk.findall('source')])
        self.assertEqual('sda', disk.find('target').get('dev'))
        self.assertIsNotNone(disk.find('readonly'))

    def test_media_device_ejects(self):
        disk = ET.fromstring(domain_xml.media_device(DOMAIN_XML, 'sda'))
        self.assertIsNone(disk.find('source'))
        self.assertEqual('sda', disk.find('target').get('dev'))

    def test_unknown_drive(self):
        self.assertRaises(errors.InvalidDomainXML, domain_xml.media_device,
                          DOMAIN_XML, 'hdz')


class VirtualMediaTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.node = self.create_node(domain='node-0')
        self.uuid = base.uuid_of(0)

    def test_empty_drive(self):
        with self.task(self.node, shared=True) as task:
            self.assertEqual(
                [{'media_types': ['cdrom'], 'inserted': False,
                  'image': None}],
                task.driver.management.get_virtual_media(task))

    def test_other_device_types(self):
        with self.task(self.node) as task:
            mgmt = task.driver.management
            for device_type in ('floppy', 'disk'):
                self.assertRaises(exception.UnsupportedDriverExtension,
                                  mgmt.attach_virtual_media, task,
                                  device_type, 'http://x/y.img')
                self.assertRaises(exception.UnsupportedDriverExtension,
                                  mgmt.detach_virtual_media, task,
                                  [device_type])
            exc = self.assertRaises(exception.InvalidParameterValue,
                                    mgmt.attach_virtual_media, task,
                                    'usb', 'http://x/y.img')
            self.assertIn('usb', str(exc))

    def test_domain_without_cdrom(self):
        node = self.create_node(domain='diskless')
        with self.task(node) as task, mock.patch.object(
                management.images, 'fetch', autospec=True,
                side_effect=lambda ctx, url, path: open(path, 'wb').close()):
            exc = self.assertRaises(exception.InvalidParameterValue,
                                    task.driver.management.
                                    attach_virtual_media,
                                    task, 'cdrom', 'http://x/y.iso')
        self.assertIn('no cdrom drive', str(exc))

    def test_failed_upload_leaves_no_volume(self):
        def fetch(context, url, path):
            with open(path, 'wb') as image:
                image.write(b'CD001' * 100)

        with self.task(self.node) as task, mock.patch.object(
                management.images, 'fetch', autospec=True,
                side_effect=fetch) as fetch_mock:
            # The test driver has no virStorageVolUpload.
            self.assertRaises(driver_exception.LibvirtError,
                              task.driver.management.attach_virtual_media,
                              task, 'cdrom', 'http://x/y.iso')
            self.assertEqual('http://x/y.iso', fetch_mock.call_args[0][1])
        pool = self.virsh(lambda c: c.storagePoolLookupByName(
            'ironic-libvirt-media'))
        self.assertTrue(pool.isActive())
        self.assertEqual([], pool.listVolumes())
        self.assertNotIn('libvirt_vmedia', self.node.driver_internal_info)

    def test_detach_when_empty_deletes_a_leftover_volume(self):
        self.config(media_pool='default-pool', group='libvirt')

        def leftover(conn):
            conn.storagePoolDefineXML(domain_xml.dir_pool_xml(
                'default-pool', '/pool'), 0).create(0)
            pool = conn.storagePoolLookupByName('default-pool')
            pool.createXML(domain_xml.volume_xml(
                '%s-sda.iso' % self.uuid, 4096), 0)
            return pool
        pool = self.virsh(leftover)
        with self.task(self.node) as task:
            task.driver.management.detach_virtual_media(task)
            task.driver.management.detach_virtual_media(task, ['cdrom'])
        self.assertEqual([], pool.listVolumes())

    def test_volume_name(self):
        domain = mock.Mock(uuid=self.uuid)
        self.assertEqual('%s-sda.iso' % self.uuid,
                         media.volume_name(domain, 'sda'))
