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

"""Finding domains by name, UUID or MAC address on libvirt's test driver."""

from ironic_libvirt.virt import errors
from ironic_libvirt.virt import locator
from tests.unit import base


class LocatorTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.connection = self.hypervisor()
        self.locator = locator.DomainLocator()

    def test_by_uuid_and_by_name(self):
        by_uuid = self.locator.by_ident(self.connection, base.uuid_of(1))
        by_name = self.locator.by_ident(self.connection, 'node-1')
        self.assertEqual(('node-1', base.uuid_of(1)),
                         (by_uuid.name, by_uuid.uuid))
        self.assertEqual(by_uuid.uuid, by_name.uuid)

    def test_unknown_name(self):
        exc = self.assertRaises(errors.DomainNotFound, self.locator.by_ident,
                                self.connection, 'nope')
        self.assertIn('nope', str(exc))

    def test_by_macs_any_case(self):
        domain = self.locator.by_macs(self.connection, ['52:54:00:00:01:01'])
        self.assertEqual('node-1', domain.name)
        domain = self.locator.by_macs(self.connection, ['52:54:00:00:00:0A',
                                                        '52:54:00:00:00:02'])
        self.assertEqual('node-uefi', domain.name)

    def test_by_macs_ambiguous_names_candidates(self):
        exc = self.assertRaises(errors.AmbiguousDomain, self.locator.by_macs,
                                self.connection, ['52:54:00:00:00:aa'])
        self.assertEqual(['twin-a', 'twin-b'], exc.candidates)

    def test_by_macs_no_match_names_macs(self):
        exc = self.assertRaises(errors.DomainNotFound, self.locator.by_macs,
                                self.connection, ['52:54:00:ff:ff:ff'])
        self.assertIn('52:54:00:ff:ff:ff', str(exc))

    def test_index_serves_lookups_and_a_miss_rescans(self):
        self.locator.by_macs(self.connection, ['52:54:00:00:00:00'])
        index = self.locator._index(self.connection)
        self.assertEqual(1, index.generation)
        self.locator.by_macs(self.connection, ['52:54:00:00:00:01'])
        self.assertEqual(1, index.generation)
        xml = self.xml('node-0').replace('node-0', 'node-new').replace(
            base.uuid_of(0), base.uuid_of(999)).replace(
            '52:54:00:00:00:00', '52:54:00:00:09:99')
        self.virsh(lambda c: c.defineXML(xml))
        self.assertEqual('node-new', self.locator.by_macs(
            self.connection, ['52:54:00:00:09:99']).name)
        self.assertEqual(2, index.generation)
