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

"""Virtual media volumes of the core (no Ironic, no libvirt call)."""

import types

import testtools

from ironic_libvirt.virt import media


class VolumeNameTestCase(testtools.TestCase):

    def test_one_volume_per_domain_and_drive(self):
        domain = types.SimpleNamespace(uuid='6b4e8d5e-0000-4000-8000-0')
        self.assertEqual('6b4e8d5e-0000-4000-8000-0-sda.iso',
                         media.volume_name(domain, 'sda'))
