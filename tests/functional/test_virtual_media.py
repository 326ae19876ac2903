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

"""Virtual media of the management interface on real QEMU.

The hypervisor is reached over qemu+tcp with SASL, so that nothing relies
on the conductor and the hypervisor sharing a disk.
"""

import xml.etree.ElementTree as ET

from ironic.common import states
import pytest

from tests.functional import base
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
class TestVirtualMediaTCP(base.FunctionalTestCase):

    transport = 'tcp'

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
