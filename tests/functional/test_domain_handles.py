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

"""Kept domain handles on the real libvirtd (qemu+tcp with SASL).

The driver keeps one ``virDomain`` per domain and link; a domain undefined
and defined again with the same UUID behind Ironic's back must be read as
it is now, never as it was.
"""

from ironic.common import boot_devices
from ironic.common import exception
from ironic.common import states
import libvirt

from tests.functional import base


class DomainHandleTestCase(base.FunctionalTestCase):

    transport = 'tcp'

    def _read(self, node):
        with self.task(node, shared=True) as task:
            return (task.driver.power.get_power_state(task),
                    task.driver.management.get_boot_device(task)[
                        'boot_device'])

    def test_redefined_domain_is_read_as_it_is_now(self):
        node = self.create_node()
        self.assertEqual((states.POWER_OFF, boot_devices.PXE),
                         self._read(node))
        old = self.observer.lookupByName(self.domain_name())
        uuid = old.UUIDString()
        xml = old.XMLDesc(base.INACTIVE)
        # A handle kept the way the driver keeps it, to show what libvirt
        # itself does with it below.
        kept = self.observer.lookupByUUIDString(uuid)

        old.undefine()
        self.assertRaises(exception.InvalidParameterValue,
                          self._read, node)

        # Defined again at once with the same UUID (and name), now booting
        # from disk, and started: nothing is read in between, so the
        # driver's handle (if the undefine event has not dropped it yet)
        # is the one from before.
        self.observer.defineXML(xml.replace(
            "<boot dev='network'/>", "<boot dev='hd'/>")).create()
        self.assertEqual((states.POWER_ON, boot_devices.DISK),
                         self._read(node))
        # libvirt resolves a handle by UUID on every call: the old handle
        # reaches the new definition, never a stale copy.
        self.assertEqual(libvirt.VIR_DOMAIN_RUNNING, kept.state()[0])
        self.assertIn("<boot dev='hd'/>", kept.XMLDesc(base.INACTIVE))

    def test_undefined_domain_is_gone_for_the_driver(self):
        node = self.create_node()
        self.assertEqual(states.POWER_OFF, self._read(node)[0])
        dom = self.observer.lookupByName(self.domain_name())
        # Defined again after the test, for the base class's clean-up.
        self.addCleanup(self.observer.defineXML, dom.XMLDesc(base.INACTIVE))
        dom.undefine()
        exc = self.assertRaises(exception.InvalidParameterValue,
                                self._read, node)
        self.assertIn(self.domain_name(), str(exc))
