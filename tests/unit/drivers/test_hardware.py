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

"""Every entry point loads the way Ironic loads it."""

import importlib.metadata

from ironic.common import driver_factory
from ironic.common import states
from ironic.drivers.modules import agent
from ironic.drivers.modules import fake
from ironic.drivers.modules import pxe
import stevedore

from ironic_libvirt.drivers import management
from ironic_libvirt.drivers import power
from tests.unit import base

HISTORIC = ['pxe_libvirt_agent', 'pxe_libvirt_iscsi', 'fake_libvirt_fake']
EXPECTED_ENTRY_POINTS = {
    'ironic.hardware.types': sorted(['libvirt'] + HISTORIC),
    'ironic.hardware.interfaces.power': ['libvirt'],
    'ironic.hardware.interfaces.management': ['libvirt'],
    'ironic.hardware.interfaces.inspect': ['libvirt'],
    'ironic.hardware.interfaces.bios': ['libvirt'],
    'ironic.hardware.interfaces.boot': ['libvirt-vmedia'],
    'ironic.hardware.interfaces.console': ['libvirt-graphical',
                                           'libvirt-socat'],
}


class EntryPointsTestCase(base.TestCase):

    def test_stevedore_loads_every_entry_point(self):
        # Every Ironic entry point this package declares, as installed.
        ours = {}
        for ep in importlib.metadata.distribution(
                'ironic-libvirt').entry_points:
            if ep.group.startswith('ironic.hardware.'):
                ours.setdefault(ep.group, []).append(ep.name)
        self.assertEqual(EXPECTED_ENTRY_POINTS,
                         {g: sorted(n) for g, n in ours.items()})
        for group, names in ours.items():
            manager = stevedore.NamedExtensionManager(
                group, names, invoke_on_load=True,
                on_load_failure_callback=(
                    lambda _mgr, ep, exc: self.fail('%s: %s' % (ep, exc))))
            self.assertEqual(sorted(names), sorted(manager.names()))

    def test_oslo_config_entry_point(self):
        manager = stevedore.NamedExtensionManager(
            'oslo.config.opts', ['ironic_libvirt'])
        groups = dict(manager['ironic_libvirt'].plugin())
        self.assertIn('default_uri', [o.name for o in groups['libvirt']])

    def test_hardware_types_build_tasks_with_libvirt_interfaces(self):
        expected = {
            'libvirt': (pxe.PXEBoot, agent.AgentDeploy),
            'pxe_libvirt_agent': (pxe.PXEBoot, agent.AgentDeploy),
            'pxe_libvirt_iscsi': (pxe.PXEBoot, agent.AgentDeploy),
            'fake_libvirt_fake': (fake.FakeBoot, fake.FakeDeploy),
        }
        for name, (boot, deploy) in expected.items():
            node = self.create_node(domain='node-0', driver=name)
            with self.task(node, shared=True) as task:
                self.assertIsInstance(task.driver.power, power.LibvirtPower)
                self.assertIsInstance(task.driver.management,
                                      management.LibvirtManagement)
                self.assertIsInstance(task.driver.boot, boot, name)
                self.assertIsInstance(task.driver.deploy, deploy, name)
                self.assertEqual(states.POWER_OFF,
                                 task.driver.power.get_power_state(task))

    def test_every_type_is_listed_by_the_factory(self):
        types = driver_factory.hardware_types()
        for name in ['libvirt'] + HISTORIC:
            self.assertIn(name, types)
