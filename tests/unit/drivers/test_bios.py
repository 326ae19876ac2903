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

"""BIOS interface ``libvirt`` on libvirt's test driver and Ironic's DB."""

import xml.etree.ElementTree as ET

from ironic.common import exception
from ironic.drivers.modules import noop
from ironic import objects

from ironic_libvirt.drivers import bios
from ironic_libvirt.drivers import hardware
from ironic_libvirt.virt import domain_xml
from tests.unit import base

NS = {'i': domain_xml.NAMESPACE}
DEFAULTS = {'BootMode': 'Bios', 'SecureBoot': 'Disabled',
            'SystemUUID': base.uuid_of(0), 'ProcTurboMode': 'Enabled',
            'ProcHyperThreading': 'Enabled', 'NumaEnabled': 'true',
            'PowerOnDelay': '0', 'AssetTag': ''}


def metadata_settings(xml):
    """{name: value} of the BIOS record in a domain XML, or None."""
    record = ET.fromstring(xml).find('metadata/i:node/i:bios', NS)
    if record is None:
        return None
    return {s.get('name'): s.get('value')
            for s in record.iterfind('i:setting', NS)}


def secure_boot_features(xml):
    return {f.get('name'): f.get('enabled')
            for f in ET.fromstring(xml).iterfind('os/firmware/feature')}


class BIOSTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.config(enabled_bios_interfaces=['libvirt', 'no-bios'])
        self.node = self.bios_node('node-0')

    def bios_node(self, domain):
        node = self.create_node(domain=domain)
        node.bios_interface = 'libvirt'
        node.save()
        return node

    def stored(self, node=None):
        """What Ironic stored: {name: BIOSSetting}."""
        return {s.name: s for s in objects.BIOSSettingList.get_by_node_id(
            self.context, (node or self.node).id)}

    def stored_values(self, node=None):
        return {n: s.value for n, s in self.stored(node).items()}

    def apply(self, settings, node=None):
        with self.task(node or self.node) as task:
            return task.driver.bios.apply_configuration(task, settings)

    def cache(self, node=None):
        with self.task(node or self.node) as task:
            task.driver.bios.cache_bios_settings(task)

    def reset(self, node=None):
        with self.task(node or self.node) as task:
            return task.driver.bios.factory_reset(task)

    def test_hardware_type_offers_the_interface(self):
        self.assertEqual([bios.LibvirtBIOS, noop.NoBIOS],
                         hardware.LibvirtHardware().supported_bios_interfaces)
        with self.task(self.node, shared=True) as task:
            self.assertIsInstance(task.driver.bios, bios.LibvirtBIOS)

    def test_cache_stores_values_and_registry(self):
        self.cache()

        stored = self.stored()
        self.assertEqual(DEFAULTS, {n: s.value for n, s in stored.items()})
        boot_mode = stored['BootMode']
        self.assertEqual('Enumeration', boot_mode.attribute_type)
        self.assertEqual(['Bios', 'Uefi'], boot_mode.allowable_values)
        self.assertTrue(boot_mode.reset_required)
        self.assertFalse(boot_mode.read_only)
        self.assertTrue(stored['SystemUUID'].read_only)
        self.assertTrue(stored['SystemUUID'].unique)
        self.assertEqual((0, 600), (stored['PowerOnDelay'].lower_bound,
                                    stored['PowerOnDelay'].upper_bound))
        self.assertEqual((0, 32), (stored['AssetTag'].min_length,
                                   stored['AssetTag'].max_length))
        self.assertFalse(stored['ProcTurboMode'].reset_required)
        # Reading changes nothing in the domain.
        self.assertIsNone(metadata_settings(self.xml('node-0')))

    def test_plain_settings_live_in_the_metadata(self):
        before = ET.fromstring(self.xml('node-0'))

        self.assertIsNone(self.apply([
            {'name': 'ProcTurboMode', 'value': 'Disabled'},
            {'name': 'PowerOnDelay', 'value': 30},
            {'name': 'NumaEnabled', 'value': 'False'},
            {'name': 'AssetTag', 'value': 'rack-1/u7'}]))

        xml = self.xml('node-0')
        self.assertEqual({'ProcTurboMode': 'Disabled', 'PowerOnDelay': '30',
                          'NumaEnabled': 'false', 'AssetTag': 'rack-1/u7'},
                         metadata_settings(xml))
        after = ET.fromstring(xml)
        for part in ('os', 'devices'):
            self.assertEqual(ET.tostring(before.find(part)),
                             ET.tostring(after.find(part)))
        self.assertEqual(dict(DEFAULTS, ProcTurboMode='Disabled',
                              PowerOnDelay='30', NumaEnabled='false',
                              AssetTag='rack-1/u7'),
                         self.stored_values())

    def test_boot_mode_and_secure_boot_change_the_domain(self):
        self.apply([{'name': 'BootMode', 'value': 'Uefi'},
                    {'name': 'SecureBoot', 'value': 'Enabled'}])

        xml = self.xml('node-0')
        root = ET.fromstring(xml)
        self.assertEqual('efi', root.find('os').get('firmware'))
        self.assertEqual({'secure-boot': 'yes', 'enrolled-keys': 'yes'},
                         secure_boot_features(xml))
        self.assertIsNotNone(root.find('features/smm'))
        self.assertEqual({}, metadata_settings(xml))
        self.assertEqual(dict(DEFAULTS, BootMode='Uefi', SecureBoot='Enabled'),
                         self.stored_values())
        with self.task(self.node, shared=True) as task:
            self.assertEqual('uefi',
                             task.driver.management.get_boot_mode(task))
            self.assertTrue(
                task.driver.management.get_secure_boot_state(task))

        self.apply([{'name': 'SecureBoot', 'value': 'Disabled'},
                    {'name': 'BootMode', 'value': 'Bios'}])

        xml = self.xml('node-0')
        self.assertIsNone(ET.fromstring(xml).find('os').get('firmware'))
        self.assertEqual({}, secure_boot_features(xml))
        self.assertEqual(DEFAULTS, self.stored_values())

    def test_factory_reset_returns_to_the_domain_as_created(self):
        uefi = self.bios_node('node-uefi')
        before = ET.fromstring(self.xml('node-uefi')).find('os')
        self.apply([{'name': 'SecureBoot', 'value': 'Enabled'},
                    {'name': 'ProcHyperThreading', 'value': 'Disabled'}],
                   node=uefi)
        self.apply([{'name': 'BootMode', 'value': 'Bios'}], node=uefi)
        self.assertEqual('Bios', self.stored_values(uefi)['BootMode'])

        self.assertIsNone(self.reset(node=uefi))

        xml = self.xml('node-uefi')
        self.assertIsNone(metadata_settings(xml))
        self.assertEqual('efi', ET.fromstring(xml).find('os').get('firmware'))
        # As defined: UEFI chosen by libvirt, no secure boot features.
        self.assertEqual(ET.tostring(before),
                         ET.tostring(ET.fromstring(xml).find('os')))
        self.assertEqual(dict(DEFAULTS, BootMode='Uefi',
                              SystemUUID=base.uuid_of(2)),
                         self.stored_values(uefi))

    def test_factory_reset_of_an_unchanged_domain(self):
        before = self.xml('node-0')
        self.reset()
        self.assertEqual(before, self.xml('node-0'))
        self.assertEqual(DEFAULTS, self.stored_values())

    def test_record_survives_beside_a_one_time_boot_device(self):
        # libvirt keeps one <metadata> element per namespace.
        with self.task(self.node) as task:
            task.driver.management.set_boot_device(task, 'disk',
                                                   persistent=False)
        self.apply([{'name': 'ProcTurboMode', 'value': 'Disabled'}])
        with self.task(self.node) as task:
            task.driver.management.set_boot_device(task, 'cdrom',
                                                   persistent=False)

        xml = self.xml('node-0')
        self.assertEqual({'ProcTurboMode': 'Disabled'},
                         metadata_settings(xml))
        self.assertIsNotNone(
            ET.fromstring(xml).find('metadata/i:node/i:boot-restore', NS))
        with self.task(self.node, shared=True) as task:
            self.assertEqual({'boot_device': 'cdrom', 'persistent': False},
                             task.driver.management.get_boot_device(task))

    def assert_refused(self, settings, *fragments, node=None):
        node = node or self.node
        before = self.xml('node-0')
        self.cache(node)
        stored = self.stored_values(node)

        exc = self.assertRaises(exception.InvalidParameterValue,
                                self.apply, settings, node=node)

        self.assertIn('Node %s' % node.uuid, str(exc))
        for fragment in fragments:
            self.assertIn(fragment, str(exc))
        self.assertEqual(before, self.xml('node-0'))
        self.assertEqual(stored, self.stored_values(node))

    def test_bad_settings_change_nothing(self):
        good = {'name': 'ProcTurboMode', 'value': 'Disabled'}
        self.assert_refused(
            [good, {'name': 'Turbo', 'value': 'On'}],
            "unknown BIOS setting 'Turbo'", 'known settings: BootMode, ')
        self.assert_refused(
            [good, {'name': 'BootMode', 'value': 'Legacy'}],
            "BIOS setting BootMode cannot be 'Legacy'",
            'allowed values: Bios, Uefi')
        self.assert_refused(
            [{'name': 'ProcTurboMode', 'value': 'enabled'}],
            'allowed values: Enabled, Disabled')
        self.assert_refused(
            [{'name': 'PowerOnDelay', 'value': '601'}],
            'BIOS setting PowerOnDelay', 'integers from 0 to 600')
        self.assert_refused(
            [{'name': 'PowerOnDelay', 'value': 'soon'}],
            'integers from 0 to 600')
        self.assert_refused(
            [{'name': 'NumaEnabled', 'value': 'yes'}],
            'allowed values: true, false')
        self.assert_refused(
            [{'name': 'AssetTag', 'value': 'x' * 33}],
            'BIOS setting AssetTag', 'strings of 0 to 32 characters')
        self.assert_refused(
            [{'name': 'AssetTag', 'value': 7}], 'it takes a string')
        self.assert_refused(
            [{'name': 'SystemUUID', 'value': base.uuid_of(9)}],
            'BIOS setting SystemUUID is read-only')
        self.assert_refused(
            [{'name': 'BootMode', 'value': 'Bios'},
             {'name': 'SecureBoot', 'value': 'Enabled'}],
            'SecureBoot Enabled needs BootMode Uefi')
        self.assert_refused({'ProcTurboMode': 'Disabled'},
                            'must be a list of')
        self.assert_refused([{'name': 'ProcTurboMode'}], 'must be a list of')

    def test_secure_boot_on_a_bios_domain(self):
        self.assert_refused([{'name': 'SecureBoot', 'value': 'Enabled'}],
                            'applying BIOS settings failed',
                            'set the boot mode to uefi first')

    def test_steps_need_no_ramdisk(self):
        with self.task(self.node, shared=True) as task:
            for kind in ('clean', 'service'):
                steps = {s['step']: s for s in getattr(
                    task.driver.bios, 'get_%s_steps' % kind)(task)}
                self.assertEqual({'apply_configuration', 'factory_reset'},
                                 set(steps))
                for step in steps.values():
                    self.assertEqual(0, step['priority'])
                    self.assertFalse(step['requires_ramdisk'])
                self.assertTrue(steps['apply_configuration']['argsinfo']
                                ['settings']['required'])
