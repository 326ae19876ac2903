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

"""The libvirt-vmedia boot interface on libvirt's test driver.

Ironic's image_utils builds real ISOs here with mkisofs and isolinux
(bindep.txt, profile test), publishes them in a temporary ``http_root``
served by a local HTTP server, and the management interface downloads them
from there. Two libvirt calls do not exist in the test driver and are
replaced: ``virStorageVolUpload`` (``media.upload`` keeps the ISO's bytes
and returns the volume's path) and ``virDomainUpdateDeviceFlags``
(``Domain.change_media`` redefines the domain with the same ``<disk>``
element instead). Both run for real in tests/functional/test_vmedia_boot.py.
"""

import functools
import http.server
import os
import shutil
import threading
from unittest import mock
import xml.etree.ElementTree as ET

import fixtures
from ironic.common import exception
from ironic.common import states
from ironic.conductor import task_manager
import libvirt

from ironic_libvirt.drivers import boot
from ironic_libvirt.virt import domain as virt_domain
from ironic_libvirt.virt import domain_xml
from ironic_libvirt.virt import media
from tests.unit import base

ISOLINUX_BIN = '/usr/lib/ISOLINUX/isolinux.bin'
TEST_NS = 'http://libvirt.org/schemas/domain/test/1.0'
ET.register_namespace('test', TEST_NS)


def iso_tools_missing():
    """Why Ironic cannot build BIOS ISOs here, or None."""
    if not shutil.which('mkisofs'):
        return 'mkisofs is not installed (bindep.txt: genisoimage)'
    if not os.path.isfile(ISOLINUX_BIN):
        return '%s is missing (bindep.txt: isolinux)' % ISOLINUX_BIN
    return None


def set_info(node, key, value):
    node.driver_info = dict(node.driver_info, **{key: value})


def _change_media(domain, target, path):
    """Domain.change_media through defineXML.

    The test driver lacks virDomainUpdateDeviceFlags; the domains of these
    tests are shut off when their media change.
    """
    def run(conn):
        dom = conn.lookupByUUIDString(domain.uuid)
        xml = dom.XMLDesc(base.INACTIVE)
        disk = ET.fromstring(domain_xml.media_device(xml, target, path))
        root = ET.fromstring(xml)
        devices = root.find('devices')
        for index, old in enumerate(devices):
            target_el = old.find('target')
            if (old.tag == 'disk' and target_el is not None
                    and target_el.get('dev') == target):
                devices[index] = disk
        conn.defineXML(ET.tostring(root, encoding='unicode'))
    domain.connection.call(run, 'changing the medium (test double)')


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class BootTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.config(enabled_boot_interfaces=['fake', 'pxe',
                                             'libvirt-vmedia'],
                    enabled_deploy_interfaces=['fake', 'direct', 'ramdisk'],
                    isolinux_bin=ISOLINUX_BIN)
        self.http_root = self.useFixture(fixtures.TempDir()).path
        self.http_url = self._serve(self.http_root)
        self.config(http_root=self.http_root, http_url=self.http_url,
                    group='deploy')
        for name in ('agent.kernel', 'agent.ramdisk', 'user.kernel',
                     'user.ramdisk'):
            with open(os.path.join(self.http_root, name), 'wb') as image:
                image.write(name.encode() * 64)
        self.uploaded = {}
        upload = mock.patch.object(media, 'upload', autospec=True,
                                   side_effect=self._upload)
        self.upload = upload.start()
        self.addCleanup(upload.stop)
        change = mock.patch.object(virt_domain.Domain, 'change_media',
                                   autospec=True, side_effect=_change_media)
        change.start()
        self.addCleanup(change.stop)

    def _serve(self, root):
        handler = functools.partial(_QuietHandler, directory=root)
        server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        return 'http://127.0.0.1:%d' % server.server_address[1]

    def _upload(self, connection, pool_name, pool_path, name, filename):
        with open(filename, 'rb') as image:
            self.uploaded[name] = image.read()
        return os.path.join(pool_path, name)

    def url(self, name):
        return '%s/%s' % (self.http_url, name)

    def vmedia_node(self, domain='node-0', state=states.DEPLOYING, **info):
        info.setdefault('deploy_kernel', self.url('agent.kernel'))
        info.setdefault('deploy_ramdisk', self.url('agent.ramdisk'))
        node = self.create_node(domain=domain, **{
            k: v for k, v in info.items() if v is not None})
        node.boot_interface = 'libvirt-vmedia'
        node.deploy_interface = 'direct'
        node.provision_state = state
        node.instance_info = {}
        node.save()
        return node

    def cdrom(self, name='node-0'):
        return domain_xml.disk_source(self.xml(name), 'sda')

    def published(self, node):
        return os.path.join(self.http_root, boot.IMAGE_SUBDIR,
                            'boot-%s.iso' % node.uuid)


class ValidateTestCase(BootTestCase):

    def validate(self, node, method='validate'):
        with self.task(node, shared=True) as task:
            getattr(task.driver.boot, method)(task)

    def test_valid(self):
        self.validate(self.vmedia_node())

    def test_missing_kernel(self):
        node = self.vmedia_node(deploy_kernel=None)
        exc = self.assertRaises(exception.MissingParameterValue,
                                self.validate, node)
        self.assertIn('deploy_kernel', str(exc))

    def test_conductor_defaults(self):
        self.config(deploy_kernel=self.url('agent.kernel'),
                    deploy_ramdisk=self.url('agent.ramdisk'),
                    group='conductor')
        node = self.create_node(domain='node-0')
        node.boot_interface = 'libvirt-vmedia'
        node.save()
        self.validate(node)

    def test_deploy_iso_instead_of_kernel_and_ramdisk(self):
        self.validate(self.vmedia_node(deploy_kernel=None,
                                       deploy_ramdisk=None,
                                       deploy_iso=self.url('x.iso')))

    def test_uefi_needs_a_bootloader(self):
        node = self.vmedia_node()
        node.properties = {'capabilities': 'boot_mode:uefi'}
        node.save()
        exc = self.assertRaises(exception.MissingParameterValue,
                                self.validate, node)
        self.assertIn('bootloader', str(exc))
        for value in (self.url('esp.img'), None):
            set_info(node, 'bootloader', value)
            node.save()
            if value is None:
                self.config(bootloader=self.url('esp.img'),
                            group='conductor')
            self.validate(node)

    def test_needs_a_web_server(self):
        self.config(http_url=None, group='deploy')
        node = self.vmedia_node()
        exc = self.assertRaises(exception.MissingParameterValue,
                                self.validate, node)
        self.assertIn('http_url', str(exc))
        set_info(node, 'external_http_url', self.http_url)
        node.save()
        self.validate(node)

    def test_needs_libvirt_management(self):
        node = self.vmedia_node()
        node.management_interface = 'noop'
        node.save()
        exc = self.assertRaises(exception.InvalidParameterValue,
                                self.validate, node)
        self.assertIn('libvirt management', str(exc))

    def test_rescue_and_inspection(self):
        node = self.vmedia_node()
        self.validate(node, 'validate_inspection')
        exc = self.assertRaises(exception.MissingParameterValue,
                                self.validate, node, 'validate_rescue')
        self.assertIn('rescue_kernel', str(exc))
        set_info(node, 'rescue_kernel', self.url('agent.kernel'))
        set_info(node, 'rescue_ramdisk', self.url('agent.ramdisk'))
        node.save()
        self.validate(node, 'validate_rescue')

    def test_properties(self):
        with self.task(self.vmedia_node(), shared=True) as task:
            properties = task.driver.boot.get_properties()
        self.assertLessEqual({'deploy_kernel', 'deploy_ramdisk',
                              'deploy_iso', 'bootloader'}, set(properties))


class SequenceTestCase(BootTestCase):

    # Ironic's image_utils runs mkisofs.
    block_execute = False

    def setUp(self):
        super().setUp()
        reason = iso_tools_missing()
        if reason:
            message = 'Ironic cannot build ISOs here: %s' % reason
            if os.environ.get('CI', '').lower() not in ('', '0', 'false',
                                                        'no'):
                self.fail(message)  # CI installs bindep.txt's packages
            self.skipTest(message)

    def prepare_ramdisk(self, node, params=None):
        with self.task(node) as task:
            task.driver.boot.prepare_ramdisk(task, dict(params or {}))
        node.refresh()

    def test_prepare_and_clean_up_ramdisk(self):
        node = self.vmedia_node(domain='node-1')
        self.assertEqual(libvirt.VIR_DOMAIN_RUNNING, self.state('node-1'))
        self.prepare_ramdisk(node, {'ipa-api-url': 'http://ironic:6385'})

        self.assertEqual(libvirt.VIR_DOMAIN_SHUTOFF, self.state('node-1'))
        volume = '%s-sda.iso' % base.uuid_of(1)
        self.assertEqual(
            '/var/lib/libvirt/images/ironic-libvirt-media/' + volume,
            self.cdrom('node-1'))
        iso = self.uploaded[volume]
        self.assertEqual(b'CD001', iso[32769:32774])
        for word in (b'boot_method=vmedia', b'ipa-api-url=http://ironic:6385',
                     b'ipa-agent-token=', b'agent.kernelagent.kernel',
                     b'ISOLINUX'):
            self.assertIn(word, iso)
        self.assertTrue(os.path.isfile(self.published(node)))
        self.assertEqual(
            {'sda': self.url('libvirt/boot-%s.iso' % node.uuid)},
            node.driver_internal_info['libvirt_vmedia'])
        self.assertEqual('bios',
                         node.driver_internal_info['deploy_boot_mode'])
        with self.task(node, shared=True) as task:
            self.assertEqual(
                {'boot_device': 'cdrom', 'persistent': False},
                task.driver.management.get_boot_device(task))

        with self.task(node) as task:
            task.driver.boot.clean_up_ramdisk(task)
        node.refresh()
        self.assertIsNone(self.cdrom('node-1'))
        self.assertFalse(os.path.exists(self.published(node)))
        self.assertNotIn('libvirt_vmedia', node.driver_internal_info)

    def test_no_ramdisk_outside_provisioning(self):
        node = self.vmedia_node(state=states.ACTIVE)
        self.prepare_ramdisk(node)
        self.assertIsNone(self.cdrom())
        self.upload.assert_not_called()

    def test_fast_track_keeps_an_inserted_iso(self):
        node = self.vmedia_node()
        self.prepare_ramdisk(node)
        self.upload.reset_mock()
        with mock.patch.object(boot.manager_utils, 'is_fast_track',
                               autospec=True, return_value=True):
            self.prepare_ramdisk(node)
            with self.task(node) as task:
                task.driver.boot.clean_up_ramdisk(task)
        self.upload.assert_not_called()
        self.assertIsNotNone(self.cdrom())

    def test_local_boot(self):
        node = self.vmedia_node()
        self.prepare_ramdisk(node)
        self.assertIsNotNone(self.cdrom())
        with self.task(node) as task:
            task.driver.boot.prepare_instance(task)
            self.assertEqual(
                {'boot_device': 'disk', 'persistent': True},
                task.driver.management.get_boot_device(task))
        self.assertIsNone(self.cdrom())
        self.assertFalse(os.path.exists(self.published(node)))

    def test_ramdisk_deploy_boots_its_iso(self):
        node = self.vmedia_node(deploy_kernel=None, deploy_ramdisk=None)
        node.deploy_interface = 'ramdisk'
        # Without cleaning, a ramdisk deploy needs no agent ramdisk.
        node.automated_clean = False
        node.instance_info = {'kernel': self.url('user.kernel'),
                              'ramdisk': self.url('user.ramdisk'),
                              'image_source': self.url('user.kernel')}
        node.save()
        with self.task(node) as task:
            task.driver.boot.validate(task)
            task.driver.boot.prepare_instance(task)
            self.assertEqual(
                {'boot_device': 'cdrom', 'persistent': True},
                task.driver.management.get_boot_device(task))
        iso = self.uploaded['%s-sda.iso' % base.uuid_of(0)]
        self.assertIn(b'user.kerneluser.kernel', iso)
        self.assertIn(b'root=/dev/ram0', iso)
        self.assertIsNotNone(self.cdrom())
        with self.task(node) as task:
            task.driver.boot.clean_up_instance(task)
        self.assertIsNone(self.cdrom())
        self.assertFalse(os.path.exists(self.published(node)))

    def test_ramdisk_deploy_refuses_a_configdrive(self):
        node = self.vmedia_node()
        node.deploy_interface = 'ramdisk'
        node.instance_info = {'kernel': self.url('user.kernel'),
                              'ramdisk': self.url('user.ramdisk'),
                              'configdrive': 'H4sI'}
        node.save()
        with self.task(node) as task:
            self.assertRaises(exception.InstanceDeployFailure,
                              task.driver.boot.prepare_instance, task)
        self.upload.assert_not_called()

    def test_interface_is_listed(self):
        with task_manager.acquire(self.context, self.vmedia_node().uuid,
                                  shared=True) as task:
            self.assertIsInstance(task.driver.boot,
                                  boot.LibvirtVirtualMediaBoot)
