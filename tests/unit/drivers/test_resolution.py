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

"""Finding a node's domain through Ironic: ports, names, remembering."""

from ironic.common import exception
from ironic.common import states

from ironic_libvirt.drivers import resolution
from tests.unit import base


class ResolutionTestCase(base.TestCase):

    def _power_state(self, node, shared=True):
        with self.task(node, shared=shared) as task:
            return task.driver.power.get_power_state(task)

    def test_found_by_port_mac(self):
        node = self.create_node(macs=['52:54:00:00:01:01'])
        self.assertEqual(states.POWER_ON, self._power_state(node))

    def test_found_by_uuid(self):
        node = self.create_node(domain=base.uuid_of(1))
        self.assertEqual(states.POWER_ON, self._power_state(node))

    def test_no_match_names_the_macs(self):
        node = self.create_node(macs=['52:54:00:ff:ff:01'])
        exc = self.assertRaises(exception.InvalidParameterValue,
                                self._power_state, node)
        self.assertIn(node.uuid, str(exc))
        self.assertIn('52:54:00:ff:ff:01', str(exc))
        self.assertIn('libvirt_domain', str(exc))

    def test_several_matches_name_the_candidates(self):
        node = self.create_node(macs=['52:54:00:00:00:aa'])
        exc = self.assertRaises(exception.InvalidParameterValue,
                                self._power_state, node)
        self.assertIn('twin-a, twin-b', str(exc))

    def test_unknown_domain_name(self):
        node = self.create_node(domain='no-such-domain')
        exc = self.assertRaises(exception.InvalidParameterValue,
                                self._power_state, node)
        self.assertIn('no-such-domain', str(exc))
        self.assertIn('Check driver_info libvirt_domain', str(exc))

    def test_resolution_is_remembered_in_driver_internal_info(self):
        node = self.create_node(macs=['52:54:00:00:00:00'])
        with self.task(node) as task:
            task.driver.power.get_power_state(task)
            task.node.save()
        node.refresh()
        self.assertEqual(base.uuid_of(0), node.driver_internal_info[
            resolution.RESOLVED_KEY]['uuid'])
        # After a conductor restart the in-memory memory is gone; the
        # node's record still resolves without a scan.
        resolution.RESOLVER._remembered.clear()
        index = resolution.RESOLVER._locator._index(self.hypervisor())
        scans = index.generation
        self.assertEqual(states.POWER_OFF, self._power_state(node))
        self.assertEqual(scans, index.generation)

    def test_vanished_domain_is_forgotten_and_found_again(self):
        node = self.create_node(macs=['52:54:00:00:00:00'])
        self.assertEqual(states.POWER_OFF, self._power_state(node))
        # The domain is undefined behind Ironic's back and defined again
        # under a new UUID with the same NIC.
        xml = self.xml('node-0').replace(base.uuid_of(0), base.uuid_of(998))
        self.virsh(lambda c: c.lookupByName('node-0').undefine())
        self.virsh(lambda c: c.defineXML(xml))
        self.assertEqual(states.POWER_OFF, self._power_state(node))
        self.assertEqual(base.uuid_of(998),
                         resolution.RESOLVER._remembered[node.uuid]['uuid'])

    def test_vanished_domain_without_replacement(self):
        node = self.create_node(macs=['52:54:00:00:00:00'])
        with self.task(node) as task:
            task.driver.power.get_power_state(task)
            self.virsh(lambda c: c.lookupByName('node-0').undefine())
            self.assertRaises(exception.InvalidParameterValue,
                              task.driver.power.get_power_state, task)
            self.assertNotIn(resolution.RESOLVED_KEY,
                             task.node.driver_internal_info)
        self.assertIsNone(resolution.RESOLVER._remembered[node.uuid])

    def test_changed_ports_resolve_again_after_validation(self):
        node = self.create_node(macs=['52:54:00:00:00:00'])
        self.assertEqual(states.POWER_OFF, self._power_state(node))
        with self.task(node) as task:
            port = task.ports[0]
            port.address = '52:54:00:00:01:01'
            port.save()
        # Ironic validates before every action an operator asks for.
        with self.task(node) as task:
            task.driver.power.validate(task)
            self.assertEqual(states.POWER_ON,
                             task.driver.power.get_power_state(task))

    def test_a_moved_mac_is_followed_before_a_change(self):
        node = self.create_node(macs=['52:54:00:00:00:00'])
        self.assertEqual(states.POWER_OFF, self._power_state(node))
        # The operator moves the node's MAC from node-0 to a new domain.
        xml = self.xml('node-0')
        self.virsh(lambda c: c.defineXML(xml.replace(
            '52:54:00:00:00:00', '52:54:00:00:0f:0f')))
        self.virsh(lambda c: c.defineXML(
            xml.replace('node-0', 'usurper').replace(base.uuid_of(0),
                                                     base.uuid_of(997))))
        with self.task(node) as task:
            task.driver.power.set_power_state(task, states.POWER_ON)
        self.assertEqual(1, self.state('usurper'))
        self.assertEqual(5, self.state('node-0'))
        self.assertEqual(base.uuid_of(997),
                         resolution.RESOLVER._remembered[node.uuid]['uuid'])

    def test_power_state_sync_reads_no_ports(self):
        node = self.create_node(macs=['52:54:00:00:00:00'])
        self.assertEqual(states.POWER_OFF, self._power_state(node))
        with self.task(node, shared=True) as task:
            task.driver.power.get_power_state(task)
            # TaskManager loads ports on first access only.
            self.assertIsNone(task._ports)
