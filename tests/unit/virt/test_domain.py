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

"""The core's Domain on libvirt's test driver (no Ironic)."""

import xml.etree.ElementTree as ET

from ironic_libvirt.virt import domain_xml
from ironic_libvirt.virt import graphics
from ironic_libvirt.virt import locator
from tests import races
from tests.unit import base


class DomainTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.connection = self.hypervisor()
        self.locator = locator.DomainLocator()

    def test_concurrent_edits_lose_no_update(self):
        domain = self.locator.by_ident(self.connection, 'node-0')
        devices_before = ET.tostring(
            ET.fromstring(self.xml('node-0')).find('devices'))
        lost = races.race_edits(
            domain, lambda: ET.fromstring(self.xml('node-0')), rounds=60)
        self.assertEqual([], lost)
        self.assertEqual(devices_before, ET.tostring(
            ET.fromstring(self.xml('node-0')).find('devices')))

    def test_reads_leave_secrets_edits_keep_them(self):
        domain = self.locator.by_ident(self.connection, 'node-0')
        graphics.enable(domain, '127.0.0.1', 's3cret00')
        # Reads (the MAC scan of every domain among them) get no password.
        self.assertNotIn('s3cret00', domain.inactive_xml())
        self.assertEqual(['52:54:00:00:00:00'], domain.mac_addresses())
        # An edit writes back the definition with its password.
        domain.set_boot_device('hd')
        self.assertEqual('s3cret00', domain_xml.vnc(self.xml('node-0'))[
            'password'])
