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

"""Management interface ``libvirt`` on libvirt's test driver.

The test driver cannot upload volumes or change a running domain's
devices: virtual media uploads and live changes are covered by the
functional tests.
"""

from unittest import mock
import xml.etree.ElementTree as ET

from ironic.common import components
from ironic.common import exception
from ironic.common import health_states
from ironic.common import indicator_states
from ironic.common import states
import libvirt

from ironic_libvirt.drivers import management
from ironic_libvirt.virt import domain_xml
from tests.unit import base


def os_boot(xml):
    return [b.get('dev') for b in ET.fromstring(xml).find('os').iter('boot')]


def device_boot_orders(xml):
    """{disk target or MAC: boot order} of per-device <boot order>."""
    orders = {}
    for device in ET.fromstring(xml).find('devices'):
        boot = device.find('boot')
        if boot is None:
            continue
        ident = (device.find('mac').get('address')
                 if device.tag == 'interface'
                 else device.find('target').get('dev'))
        orders[ident] = int(boot.get('order'))
    return orders


class BootDeviceTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.node = self.create_node(domain='node-0')

    def _set(self, device, persistent=True, node=None):
        with self.task(node or self.node) as task:
            task.driver.management.set_boot_device(task, device,
                                                   persistent=persistent)

    def _get(self, node=None):
        with self.task(node or self.node, shared=True) as task:
            return task.driver.management.get_boot_device(task)

    def test_get_returns_ironic_names(self):
        self.assertEqual({'boot_device': 'pxe', 'persistent': True},
                         self._get())

    def test_set_persistent_edits_os_boot_only(self):
        before = ET.fromstring(self.xml('node-0'))
        self._set('disk')
        after = ET.fromstring(self.xml('node-0'))
        self.assertEqual(['hd', 'network'], os_boot(self.xml('node-0')))
        self.assertEqual({'boot_device': 'disk', 'persistent': True},
                         self._get())
        self.assertEqual(ET.tostring(before.find('devices')),
                         ET.tostring(after.find('devices')))
        self._set('cdrom')
        self.assertEqual(['cdrom', 'hd', 'network'],
                         os_boot(self.xml('node-0')))
        self.assertEqual('cdrom', self._get()['boot_device'])

    def test_per_device_boot_order_is_kept_per_device(self):
        node = self.create_node(domain='node-1')
        self._set('cdrom', node=node)
        xml = self.xml('node-1')
        self.assertEqual([], os_boot(xml))
        self.assertEqual({'sda': 1, 'vda': 2, '52:54:00:00:00:01': 3,
                          '52:54:00:00:01:01': 4}, device_boot_orders(xml))
        self.assertEqual({'boot_device': 'cdrom', 'persistent': True},
                         self._get(node))
        self._set('pxe', node=node)
        self.assertEqual({'52:54:00:00:00:01': 1, '52:54:00:00:01:01': 2,
                          'sda': 3, 'vda': 4},
                         device_boot_orders(self.xml('node-1')))

    def test_one_time_per_device_order_restored_exactly(self):
        node = self.create_node(domain='node-1')
        before = device_boot_orders(self.xml('node-1'))
        self._set('cdrom', persistent=False, node=node)
        self.assertEqual({'boot_device': 'cdrom', 'persistent': False},
                         self._get(node))
        with self.task(node) as task:
            task.driver.power.reboot(task)
        self.assertEqual(before, device_boot_orders(self.xml('node-1')))
        self.assertEqual({'boot_device': 'disk', 'persistent': True},
                         self._get(node))

    def test_one_time_then_persistent_clears_the_restore(self):
        self._set('cdrom', persistent=False)
        self._set('disk', persistent=True)
        self.assertEqual({'boot_device': 'disk', 'persistent': True},
                         self._get())
        self.assertNotIn('boot-restore', self.xml('node-0'))

    def test_running_domain_changes_apply_at_next_start(self):
        node = self.create_node(domain='node-1')
        live_before = device_boot_orders(self.xml('node-1', flags=0))
        self.assertEqual(1, live_before['vda'])
        self._set('pxe', node=node)
        # The definition changed; the running machine did not.
        self.assertEqual(1, device_boot_orders(
            self.xml('node-1'))['52:54:00:00:00:01'])
        self.assertEqual(live_before,
                         device_boot_orders(self.xml('node-1', flags=0)))
        with self.task(node) as task:
            task.driver.power.set_power_state(task, states.POWER_OFF)
            task.driver.power.set_power_state(task, states.POWER_ON)
        self.assertEqual(1, device_boot_orders(
            self.xml('node-1', flags=0))['52:54:00:00:00:01'])

    def test_device_the_domain_lacks(self):
        node = self.create_node(domain='diskless')
        exc = self.assertRaises(exception.InvalidParameterValue,
                                self._set, 'cdrom', node=node)
        self.assertIn(node.uuid, str(exc))
        self.assertIn('no cdrom device', str(exc))

    def test_unknown_device(self):
        exc = self.assertRaises(exception.InvalidParameterValue,
                                self._set, 'wanboot')
        self.assertIn('wanboot', str(exc))

    def test_supported_boot_devices(self):
        node = self.create_node(domain='node-1')
        with self.task(self.node, shared=True) as task:
            self.assertEqual(
                ['pxe', 'disk', 'cdrom'],
                task.driver.management.get_supported_boot_devices(task))
        with self.task(node, shared=True) as task:
            self.assertEqual(
                ['pxe', 'disk', 'cdrom', 'floppy'],
                task.driver.management.get_supported_boot_devices(task))
        self._set('floppy', node=node)
        self.assertEqual('floppy', self._get(node)['boot_device'])


class BootModeTestCase(base.TestCase):

    def test_bios_to_uefi_and_back(self):
        node = self.create_node(domain='node-0')
        with self.task(node) as task:
            mgmt = task.driver.management
            self.assertEqual(['bios', 'uefi'],
                             mgmt.get_supported_boot_modes(task))
            self.assertEqual('bios', mgmt.get_boot_mode(task))
            mgmt.set_boot_mode(task, 'uefi')
            self.assertEqual('efi', ET.fromstring(
                self.xml('node-0')).find('os').get('firmware'))
            self.assertEqual('uefi', mgmt.get_boot_mode(task))
            mgmt.set_boot_mode(task, 'bios')
            self.assertIsNone(ET.fromstring(
                self.xml('node-0')).find('os').get('firmware'))
            self.assertEqual('bios', mgmt.get_boot_mode(task))

    def test_unsupported_mode(self):
        node = self.create_node(domain='node-0')
        with self.task(node) as task:
            self.assertRaises(exception.InvalidParameterValue,
                              task.driver.management.set_boot_mode,
                              task, 'legacy')

    def test_secure_boot_needs_uefi(self):
        node = self.create_node(domain='node-0')
        with self.task(node) as task:
            mgmt = task.driver.management
            self.assertFalse(mgmt.get_secure_boot_state(task))
            exc = self.assertRaises(exception.InvalidParameterValue,
                                    mgmt.set_secure_boot_state, task, True)
            self.assertIn('uefi', str(exc))

    def test_secure_boot_on_and_off(self):
        node = self.create_node(domain='node-uefi')
        with self.task(node) as task:
            mgmt = task.driver.management
            mgmt.set_secure_boot_state(task, True)
            self.assertTrue(mgmt.get_secure_boot_state(task))
            root = ET.fromstring(self.xml('node-uefi'))
            features = {f.get('name'): f.get('enabled')
                        for f in root.iterfind('os/firmware/feature')}
            self.assertEqual({'secure-boot': 'yes', 'enrolled-keys': 'yes'},
                             features)
            self.assertIsNotNone(root.find('features/smm'))
            mgmt.set_secure_boot_state(task, False)
            self.assertFalse(mgmt.get_secure_boot_state(task))


class OtherManagementTestCase(base.TestCase):

    def test_inject_nmi_on_running_domain(self):
        """The NMI reaches libvirt and leaves the machine running.

        The NMI itself is not observable on libvirt's test driver (its
        injectNMI only checks that the domain runs): what is observable is
        that the call succeeds and that the machine neither stopped nor
        restarted (same domain ID).
        """
        node = self.create_node(domain='node-1')
        domain_id = self.virsh(lambda c: c.lookupByName('node-1').ID())
        with self.task(node) as task:
            task.driver.management.inject_nmi(task)
        self.assertEqual(libvirt.VIR_DOMAIN_RUNNING, self.state('node-1'))
        self.assertEqual(domain_id,
                         self.virsh(lambda c: c.lookupByName('node-1').ID()))

    def test_inject_nmi_on_stopped_domain_is_a_clear_error(self):
        node = self.create_node(domain='node-0')
        with self.task(node) as task:
            exc = self.assertRaises(exception.DriverOperationError,
                                    task.driver.management.inject_nmi, task)
        message = str(exc)
        self.assertIn(node.uuid, message)
        self.assertIn('injecting an NMI', message)
        # libvirt's own reason, so that the operator knows the fix.
        self.assertIn('domain is not running', message)
        self.assertEqual(libvirt.VIR_DOMAIN_SHUTOFF, self.state('node-0'))

    def test_sensors_data(self):
        node = self.create_node(domain='node-1')
        with self.task(node, shared=True) as task:
            data = task.driver.management.get_sensors_data(task)
        self.assertEqual({'Sensor Reading': '2', 'Units': 'count'},
                         data['CPU']['vcpus'])
        self.assertEqual({'Sensor Reading': '1048576', 'Units': 'KiB'},
                         data['Memory']['max'])

    def test_mac_addresses(self):
        node = self.create_node(domain='node-1')
        with self.task(node, shared=True) as task:
            self.assertEqual(['52:54:00:00:00:01', '52:54:00:00:01:01'],
                             task.driver.management.get_mac_addresses(task))


class VirtualMediaTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.node = self.create_node(domain='node-0')
        self.uuid = base.uuid_of(0)

    def test_empty_drive(self):
        with self.task(self.node, shared=True) as task:
            self.assertEqual(
                [{'media_types': ['cdrom'], 'inserted': False,
                  'image': None}],
                task.driver.management.get_virtual_media(task))

    def test_other_device_types(self):
        with self.task(self.node) as task:
            mgmt = task.driver.management
            for device_type in ('floppy', 'disk'):
                self.assertRaises(exception.UnsupportedDriverExtension,
                                  mgmt.attach_virtual_media, task,
                                  device_type, 'http://x/y.img')
                self.assertRaises(exception.UnsupportedDriverExtension,
                                  mgmt.detach_virtual_media, task,
                                  [device_type])
            exc = self.assertRaises(exception.InvalidParameterValue,
                                    mgmt.attach_virtual_media, task,
                                    'usb', 'http://x/y.img')
            self.assertIn('usb', str(exc))

    def test_domain_without_cdrom(self):
        node = self.create_node(domain='diskless')
        with self.task(node) as task, mock.patch.object(
                management.images, 'fetch', autospec=True,
                side_effect=lambda ctx, url, path: open(path, 'wb').close()):
            exc = self.assertRaises(exception.InvalidParameterValue,
                                    task.driver.management.
                                    attach_virtual_media,
                                    task, 'cdrom', 'http://x/y.iso')
        self.assertIn('no cdrom drive', str(exc))

    def test_failed_upload_leaves_no_volume(self):
        def fetch(context, url, path):
            with open(path, 'wb') as image:
                image.write(b'CD001' * 100)

        with self.task(self.node) as task, mock.patch.object(
                management.images, 'fetch', autospec=True,
                side_effect=fetch) as fetch_mock:
            # The test driver has no virStorageVolUpload.
            self.assertRaises(exception.DriverOperationError,
                              task.driver.management.attach_virtual_media,
                              task, 'cdrom', 'http://x/y.iso')
            self.assertEqual('http://x/y.iso', fetch_mock.call_args[0][1])
        pool = self.virsh(lambda c: c.storagePoolLookupByName(
            'ironic-libvirt-media'))
        self.assertTrue(pool.isActive())
        self.assertEqual([], pool.listVolumes())
        self.node.refresh()
        self.assertNotIn(management.VMEDIA_KEY,
                         self.node.driver_internal_info)

    def test_detach_when_empty_deletes_a_leftover_volume(self):
        self.config(media_pool='default-pool', group='libvirt')

        def leftover(conn):
            conn.storagePoolDefineXML(domain_xml.dir_pool_xml(
                'default-pool', '/pool'), 0).create(0)
            pool = conn.storagePoolLookupByName('default-pool')
            pool.createXML(domain_xml.volume_xml(
                '%s-sda.iso' % self.uuid, 4096), 0)
            return pool
        pool = self.virsh(leftover)
        self.node.set_driver_internal_info(
            management.VMEDIA_KEY, {'sda': 'http://x/old.iso'})
        self.node.save()
        with self.task(self.node) as task:
            task.driver.management.detach_virtual_media(task)
            task.driver.management.detach_virtual_media(task, ['cdrom'])
        self.assertEqual([], pool.listVolumes())
        # The record of the attached URL is gone from the database.
        self.node.refresh()
        self.assertNotIn(management.VMEDIA_KEY,
                         self.node.driver_internal_info)


# A domain that declares its SMBIOS manufacturer, as sushy-tools' users
# and Nova do.
SMBIOS_DOMAIN = '''<domain type='test'>
  <name>smbios</name>
  <uuid>6b4e8d5e-0000-4000-8000-000000000777</uuid>
  <memory unit='KiB'>1048576</memory>
  <sysinfo type='smbios'>
    <system><entry name='manufacturer'>Virtual Iron Works</entry></system>
  </sysinfo>
  <os><type arch='x86_64'>hvm</type><smbios mode='sysinfo'/></os>
</domain>'''


class HealthTestCase(base.TestCase):

    def _health(self, domain):
        node = self.create_node(domain=domain)
        with self.task(node, shared=True) as task:
            return task.driver.management.get_node_health(task)

    def test_running_and_stopped_domains_are_ok(self):
        self.assertEqual(health_states.HealthState.OK,
                         self._health('node-1'))
        self.assertEqual(health_states.HealthState.OK,
                         self._health('node-0'))

    def test_crashed_domain_is_critical(self):
        self.assertEqual(health_states.HealthState.CRITICAL,
                         self._health('state-6'))

    def test_no_state_is_unknown(self):
        self.assertIsNone(self._health('state-0'))


class SyncReadingsTestCase(base.TestCase):
    """Ironic's power sync reads each pair in one shared task, once."""

    def setUp(self):
        super().setUp()
        # A domain of the test's own, which the test undefines.
        self.virsh(lambda c: c.defineXML(SMBIOS_DOMAIN))
        self.node = self.create_node(domain='smbios')

    def _undefine(self):
        self.virsh(lambda c: c.lookupByName('smbios').undefine())

    def test_health_answers_from_the_power_state_reading(self):
        with self.task(self.node, shared=True) as task:
            self.assertEqual(states.POWER_OFF,
                             task.driver.power.get_power_state(task))
            self._undefine()
            # No second libvirt call: the domain is gone, yet health is
            # the one the power state reading showed.
            self.assertEqual(health_states.HealthState.OK,
                             task.driver.management.get_node_health(task))
            # The reading is handed on once; the next call reads afresh.
            self.assertRaises(exception.InvalidParameterValue,
                              task.driver.management.get_node_health, task)

    def test_secure_boot_answers_from_the_boot_mode_reading(self):
        with self.task(self.node, shared=True) as task:
            mgmt = task.driver.management
            self.assertEqual('bios', mgmt.get_boot_mode(task))
            self._undefine()
            self.assertFalse(mgmt.get_secure_boot_state(task))
            self.assertRaises(exception.InvalidParameterValue,
                              mgmt.get_secure_boot_state, task)

    def test_exclusive_task_reads_afresh(self):
        with self.task(self.node) as task:
            task.driver.power.get_power_state(task)
            self._undefine()
            self.assertRaises(exception.InvalidParameterValue,
                              task.driver.management.get_node_health, task)


class VendorTestCase(base.TestCase):

    def _vendor(self, domain):
        node = self.create_node(domain=domain)
        with self.task(node, shared=True) as task:
            return task.driver.management.detect_vendor(task)

    def test_declared_smbios_manufacturer(self):
        self.virsh(lambda c: c.defineXML(SMBIOS_DOMAIN))
        self.assertEqual('Virtual Iron Works', self._vendor('smbios'))

    def test_test_driver_domain_declares_none(self):
        self.assertIsNone(self._vendor('node-0'))


class IndicatorTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.node = self.create_node(domain='node-1')

    def test_supported_indicators(self):
        with self.task(self.node, shared=True) as task:
            supported = task.driver.management.get_supported_indicators(task)
            only_disk = task.driver.management.get_supported_indicators(
                task, components.DISK)
        states = [indicator_states.OFF, indicator_states.ON,
                  indicator_states.BLINKING]
        self.assertEqual(
            {components.SYSTEM: {'led': {'readonly': False,
                                         'states': states}},
             components.DISK: {'led': {'readonly': False,
                                       'states': states}}}, supported)
        self.assertEqual([components.DISK], list(only_disk))

    def test_off_until_set_then_kept_in_the_domain(self):
        with self.task(self.node) as task:
            mgmt = task.driver.management
            self.assertEqual(indicator_states.OFF, mgmt.get_indicator_state(
                task, components.SYSTEM, 'led'))
            mgmt.set_indicator_state(task, components.SYSTEM, 'led',
                                     indicator_states.BLINKING)
            mgmt.set_indicator_state(task, components.DISK, 'led',
                                     indicator_states.ON)
            mgmt.set_indicator_state(task, components.SYSTEM, 'led',
                                     indicator_states.ON)
        # The states live in the domain's metadata, not in the driver.
        xml = self.xml('node-1')
        self.assertEqual(2, xml.count('<ironic-libvirt:indicator '), xml)
        self.assertIn('component="system" id="led" state="on"', xml)
        self.assertIn('component="disk" id="led" state="on"', xml)
        with self.task(self.node, shared=True) as task:
            self.assertEqual(indicator_states.ON,
                             task.driver.management.get_indicator_state(
                                 task, components.SYSTEM, 'led'))

    def test_indicators_and_a_pending_one_time_boot_coexist(self):
        # libvirt keeps one metadata element per namespace: both records
        # must survive each other's edits.
        with self.task(self.node) as task:
            task.driver.management.set_boot_device(task, 'cdrom',
                                                   persistent=False)
            task.driver.management.set_indicator_state(
                task, components.SYSTEM, 'led', indicator_states.ON)
            self.assertEqual(
                {'boot_device': 'cdrom', 'persistent': False},
                task.driver.management.get_boot_device(task))
            task.driver.management.set_boot_device(task, 'disk',
                                                   persistent=True)
            self.assertEqual(indicator_states.ON,
                             task.driver.management.get_indicator_state(
                                 task, components.SYSTEM, 'led'))
        self.assertNotIn('boot-restore', self.xml('node-1'))

    def test_unknown_component_indicator_or_state(self):
        with self.task(self.node) as task:
            mgmt = task.driver.management
            for args, named in (
                    ((components.NIC, 'led', indicator_states.ON),
                     'indicator component nic'),
                    ((components.SYSTEM, 'fan', indicator_states.ON),
                     'indicator of component system fan'),
                    ((components.SYSTEM, 'led', indicator_states.UNKNOWN),
                     'indicator state unknown')):
                exc = self.assertRaises(exception.InvalidParameterValue,
                                        mgmt.set_indicator_state, task,
                                        *args)
                self.assertIn(self.node.uuid, str(exc))
                self.assertIn(named, str(exc))
                self.assertIn('supported:', str(exc))
        self.assertNotIn('indicator', self.xml('node-1'))
