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
