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

"""The libvirt-vmedia boot interface on a real libvirtd and QEMU.

Ironic's image_utils builds a real BIOS ISO (mkisofs, isolinux) out of
small fake kernel and ramdisk files and publishes it in a temporary
``[deploy] http_root`` served over HTTP; the driver downloads it and
uploads it over qemu+tcp with SASL into the domain's CD-ROM. SeaBIOS then
boots the ISO: it reads isolinux from the CD-ROM (the fake kernel itself
cannot run, which does not matter here).
"""

import os
import shutil

import fixtures
from ironic.common import states
import libvirt
import pytest

from tests.functional import base
from tests.functional import test_virtual_media
from tests.harness import system
from tests.harness import web

ISOLINUX_BIN = '/usr/lib/ISOLINUX/isolinux.bin'
# Where Ironic finds it on Debian (syslinux-common).
LDLINUX_C32 = '/usr/lib/syslinux/modules/bios/ldlinux.c32'


@pytest.fixture(scope='class')
def http_root(request, tmp_path_factory):
    """The conductor's web server: a directory served over HTTP."""
    root = tmp_path_factory.mktemp('httpboot')
    for name in ('agent.kernel', 'agent.ramdisk'):
        (root / name).write_bytes(name.encode() * 64)
    with web.serving(root) as url:
        request.cls.http_root = root
        request.cls.http_url = url
        yield root


@pytest.mark.usefixtures('http_root')
class TestVirtualMediaBootTCP(base.FunctionalTestCase):

    transport = 'tcp'
    # Ironic's image_utils runs mkisofs.
    block_execute = False

    def setUp(self):
        super().setUp()
        for needed in ('mkisofs', ISOLINUX_BIN, LDLINUX_C32):
            if not (os.path.isfile(needed) or shutil.which(needed)):
                self.fail('%s is missing: install the packages of '
                          'bindep.txt (profile test)' % needed)
        self.config(enabled_boot_interfaces=['fake', 'pxe',
                                             'libvirt-vmedia'],
                    isolinux_bin=ISOLINUX_BIN,
                    tempdir=self.useFixture(fixtures.TempDir()).path)
        self.config(http_root=str(self.http_root), http_url=self.http_url,
                    group='deploy')

    def _pool(self):
        return self.observer.storagePoolLookupByName('ironic-libvirt-media')

    def _volume_file(self, path):
        # /var/lib/libvirt of the daemons is the harness's lib/.
        return self.daemon.base_dir / 'lib' / path[len('/var/lib/libvirt/'):]

    def _cdrom_reads(self):
        dom = self.observer.lookupByName(self.domain_name())
        return dom.blockStats('sda')[1]  # bytes read

    def test_deploy_ramdisk_boots_from_the_iso(self):
        node = self.create_node(
            deploy_kernel='%s/agent.kernel' % self.http_url,
            deploy_ramdisk='%s/agent.ramdisk' % self.http_url)
        node.boot_interface = 'libvirt-vmedia'
        node.provision_state = states.DEPLOYING
        node.instance_info = {}
        node.save()
        published = self.http_root / 'libvirt' / ('boot-%s.iso' % node.uuid)
        uuid = self.observer.lookupByName(self.domain_name()).UUIDString()

        with self.task(node) as task:
            task.driver.boot.validate(task)
            task.driver.boot.prepare_ramdisk(task, {'ipa-debug': '1'})

            path = self._pool().storageVolLookupByName(
                '%s-sda.iso' % uuid).path()
            self.assertEqual(path, test_virtual_media.cdrom_source(
                self.xml()))
            iso = self._volume_file(path).read_bytes()
            self.assertEqual(published.read_bytes(), iso)
            self.assertEqual(b'CD001', iso[32769:32774])
            self.assertIn(b'boot_method=vmedia', iso)
            self.assertEqual('cdrom', base.boot_order(self.xml())[0])
            self.assertEqual({'boot_device': 'cdrom', 'persistent': False},
                             task.driver.management.get_boot_device(task))

            task.driver.power.set_power_state(task, states.POWER_ON,
                                              timeout=10)
            self.assertEqual(libvirt.VIR_DOMAIN_RUNNING, self.state())
            live = self.xml(flags=0)
            self.assertEqual('cdrom', base.boot_order(live)[0])
            self.assertEqual(path, test_virtual_media.cdrom_source(live))
            # SeaBIOS reads isolinux.bin (about 40 KiB) from the CD-ROM,
            # and isolinux, running, reads ldlinux.c32 (about 120 KiB).
            loaded = (os.path.getsize(ISOLINUX_BIN)
                      + os.path.getsize(LDLINUX_C32))
            system.wait_for(lambda: self._cdrom_reads() > loaded, 30,
                            'isolinux to load from the ISO')
            # One boot only: the persistent order is back.
            self.assertEqual(['network'], base.boot_order(self.xml()))

            task.driver.boot.clean_up_ramdisk(task)
        self.assertEqual(libvirt.VIR_DOMAIN_SHUTOFF, self.state())
        self.assertIsNone(test_virtual_media.cdrom_source(self.xml()))
        self.assertEqual([], self._pool().listVolumes())
        self.assertFalse(published.exists())
        node.refresh()
        self.assertNotIn('libvirt_vmedia', node.driver_internal_info)
        self.assert_no_secret('')
