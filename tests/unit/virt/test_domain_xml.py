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

"""Pure functions over domain XML: no libvirt, no Ironic, no database."""

import xml.etree.ElementTree as ET

import testtools

from ironic_libvirt.virt import domain_xml
from ironic_libvirt.virt import errors

MEDIA_XML = '''<domain type='kvm'><name>d</name><os><type>hvm</type></os>
<devices>
  <disk type='file' device='disk'><source file='/d.qcow2'/>
    <target dev='vda'/></disk>
  <disk type='volume' device='cdrom'><driver name='qemu' type='raw'/>
    <source pool='p' volume='v'/><target dev='sda' bus='sata'/><readonly/>
  </disk>
  <disk type='file' device='cdrom'><target dev='sdb' bus='sata'/></disk>
</devices></domain>'''

# <os><boot dev> order, a loader and NVRAM before the boot elements.
OS_ORDER_XML = '''<domain type='kvm'><name>os</name>
<os><type arch='x86_64' machine='q35'>hvm</type>
<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader>
<nvram>/var/lib/libvirt/qemu/nvram/os_VARS.fd</nvram>
<boot dev='network'/><boot dev='hd'/></os>
<devices>
  <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
    <source file='/os.qcow2'/><target dev='vda'/></disk>
  <disk type='file' device='cdrom'><target dev='sda'/></disk>
  <interface type='network'><mac address='52:54:00:AA:00:01'/>
    <source network='default'/></interface>
</devices></domain>'''

# Per-device <boot order>; the floppy has none.
DEVICE_ORDER_XML = '''<domain type='kvm'><name>dev</name>
<os><type arch='aarch64'>hvm</type></os>
<devices>
  <disk type='file' device='disk'><source file='/dev.qcow2'/>
    <target dev='vda'/><boot order='2'/></disk>
  <disk type='file' device='cdrom'><target dev='sda'/></disk>
  <disk type='file' device='floppy'><target dev='fda'/></disk>
  <interface type='network'><mac address='52:54:00:00:00:01'/>
    <boot order='1'/></interface>
  <interface type='network'><mac address='52:54:00:00:00:02'/>
    <boot order='3'/></interface>
</devices></domain>'''

# UEFI through libvirt's firmware auto-selection, without secure boot.
EFI_XML = '''<domain type='kvm'><name>efi</name>
<os firmware='efi'><type arch='x86_64'>hvm</type><boot dev='hd'/></os>
<devices/></domain>'''


def device_orders(xml):
    """{disk target or MAC: per-device boot order}."""
    orders = {}
    for device in ET.fromstring(xml).find('devices'):
        boot = device.find('boot')
        if boot is not None:
            ident = (device.find('mac').get('address')
                     if device.tag == 'interface'
                     else device.find('target').get('dev'))
            orders[ident] = int(boot.get('order'))
    return orders


class ParseTestCase(testtools.TestCase):

    def test_unparsable_xml(self):
        exc = self.assertRaises(errors.InvalidDomainXML,
                                domain_xml.boot_order, '<domain>')
        self.assertIn('cannot be parsed', str(exc))

    def test_no_os_element(self):
        exc = self.assertRaises(errors.InvalidDomainXML,
                                domain_xml.firmware, '<domain/>')
        self.assertIn('<os>', str(exc))


class IdentityTestCase(testtools.TestCase):

    def test_mac_addresses_lower_case_in_order(self):
        self.assertEqual(['52:54:00:aa:00:01'],
                         domain_xml.mac_addresses(OS_ORDER_XML))
        self.assertEqual(['52:54:00:00:00:01', '52:54:00:00:00:02'],
                         domain_xml.mac_addresses(DEVICE_ORDER_XML))
        self.assertEqual([], domain_xml.mac_addresses(EFI_XML))

    def test_device_kinds(self):
        self.assertEqual({'network', 'hd', 'cdrom'},
                         domain_xml.device_kinds(OS_ORDER_XML))
        self.assertEqual({'network', 'hd', 'cdrom', 'fd'},
                         domain_xml.device_kinds(DEVICE_ORDER_XML))
        self.assertEqual(set(), domain_xml.device_kinds(EFI_XML))

    def test_architecture(self):
        self.assertEqual('x86_64', domain_xml.architecture(OS_ORDER_XML))
        self.assertEqual('aarch64', domain_xml.architecture(DEVICE_ORDER_XML))
        self.assertIsNone(domain_xml.architecture(
            '<domain><os/></domain>'))


class BootOrderTestCase(testtools.TestCase):

    def test_os_boot_order(self):
        self.assertEqual(['network', 'hd'],
                         domain_xml.boot_order(OS_ORDER_XML))

    def test_per_device_order_by_order_number(self):
        self.assertEqual(['network', 'hd', 'network'],
                         domain_xml.boot_order(DEVICE_ORDER_XML))

    def test_first_os_device_keeps_the_rest_in_order(self):
        xml = domain_xml.set_first_boot_device(OS_ORDER_XML, 'cdrom')
        self.assertEqual(['cdrom', 'network', 'hd'],
                         domain_xml.boot_order(xml))
        xml = domain_xml.set_first_boot_device(xml, 'hd')
        self.assertEqual(['hd', 'cdrom', 'network'],
                         domain_xml.boot_order(xml))

    def test_os_boot_stays_after_loader_and_nvram(self):
        xml = domain_xml.set_first_boot_device(OS_ORDER_XML, 'hd')
        tags = [child.tag for child in ET.fromstring(xml).find('os')]
        self.assertEqual(['type', 'loader', 'nvram', 'boot', 'boot'], tags)

    def test_os_boot_inserted_after_type_when_there_is_none(self):
        xml = domain_xml.set_first_boot_device(EFI_XML.replace(
            "<boot dev='hd'/>", '').replace(
            '<devices/>', "<devices><disk device='cdrom'>"
                          "<target dev='sda'/></disk></devices>"), 'cdrom')
        self.assertEqual(['type', 'boot'],
                         [c.tag for c in ET.fromstring(xml).find('os')])

    def test_per_device_style_is_kept(self):
        xml = domain_xml.set_first_boot_device(DEVICE_ORDER_XML, 'cdrom')
        self.assertEqual([], ET.fromstring(xml).findall('os/boot'))
        self.assertEqual({'sda': 1, '52:54:00:00:00:01': 2, 'vda': 3,
                          '52:54:00:00:00:02': 4}, device_orders(xml))

    def test_per_device_first_of_a_kind_already_ordered(self):
        xml = domain_xml.set_first_boot_device(DEVICE_ORDER_XML, 'hd')
        self.assertEqual({'vda': 1, '52:54:00:00:00:01': 2,
                          '52:54:00:00:00:02': 3}, device_orders(xml))

    def test_device_the_domain_lacks(self):
        exc = self.assertRaises(errors.InvalidDomainXML,
                                domain_xml.set_first_boot_device,
                                OS_ORDER_XML, 'fd')
        self.assertIn('no fd device', str(exc))


class BootSnapshotTestCase(testtools.TestCase):

    def test_os_snapshot_round_trip(self):
        snapshot = domain_xml.boot_snapshot(OS_ORDER_XML)
        self.assertEqual('os:network hd', snapshot)
        changed = domain_xml.set_first_boot_device(OS_ORDER_XML, 'cdrom')
        restored = domain_xml.restore_boot(changed, snapshot)
        self.assertEqual(['network', 'hd'], domain_xml.boot_order(restored))

    def test_device_snapshot_names_disks_and_macs(self):
        snapshot = domain_xml.boot_snapshot(DEVICE_ORDER_XML)
        self.assertEqual(
            'device:mac=52:54:00:00:00:01 disk=vda mac=52:54:00:00:00:02',
            snapshot)
        changed = domain_xml.set_first_boot_device(DEVICE_ORDER_XML, 'cdrom')
        restored = domain_xml.restore_boot(changed, snapshot)
        self.assertEqual(device_orders(DEVICE_ORDER_XML),
                         device_orders(restored))

    def test_restore_skips_a_device_that_went_away(self):
        restored = domain_xml.restore_boot(
            DEVICE_ORDER_XML, 'device:disk=vdz disk=vda')
        self.assertEqual({'vda': 1}, device_orders(restored))


class PendingRestoreTestCase(testtools.TestCase):

    def test_none_recorded(self):
        self.assertIsNone(domain_xml.pending_restore(OS_ORDER_XML))

    def test_record_read_and_clear(self):
        xml = domain_xml.set_pending_restore(OS_ORDER_XML, 'os:network hd')
        self.assertEqual('os:network hd', domain_xml.pending_restore(xml))
        self.assertIn(domain_xml.NAMESPACE, xml)
        xml = domain_xml.set_pending_restore(xml, 'os:hd')
        self.assertEqual('os:hd', domain_xml.pending_restore(xml))
        self.assertEqual(1, len(ET.fromstring(xml).find('metadata')))
        cleared = domain_xml.set_pending_restore(xml, None)
        self.assertIsNone(domain_xml.pending_restore(cleared))
        # The <metadata> it created goes with the record.
        self.assertIsNone(ET.fromstring(cleared).find('metadata'))

    def test_clear_keeps_other_metadata(self):
        xml = OS_ORDER_XML.replace(
            '<os>', '<metadata><other xmlns="urn:x"/></metadata><os>')
        xml = domain_xml.set_pending_restore(xml, 'os:hd')
        cleared = domain_xml.set_pending_restore(xml, None)
        self.assertEqual(['{urn:x}other'], [
            el.tag for el in ET.fromstring(cleared).find('metadata')])

    def test_record_of_an_earlier_version_is_read_and_moved(self):
        # Earlier versions wrote boot-restore directly under <metadata>;
        # libvirt keeps one element per namespace, so it now lives in the
        # driver's one element.
        legacy = OS_ORDER_XML.replace(
            '<os>', '<metadata><ironic-libvirt:boot-restore '
            'xmlns:ironic-libvirt="%s" order="os:hd network"/></metadata>'
            '<os>' % domain_xml.NAMESPACE)
        self.assertEqual('os:hd network', domain_xml.pending_restore(legacy))
        edited = domain_xml.set_indicator_state(legacy, 'system', 'led',
                                                'on')
        metadata = ET.fromstring(edited).find('metadata')
        self.assertEqual(['{%s}node' % domain_xml.NAMESPACE],
                         [el.tag for el in metadata])
        self.assertEqual('os:hd network', domain_xml.pending_restore(edited))
        self.assertEqual({('system', 'led'): 'on'},
                         domain_xml.indicator_states(edited))


class FirmwareTestCase(testtools.TestCase):

    def test_detection(self):
        self.assertEqual('uefi', domain_xml.firmware(EFI_XML))
        self.assertEqual('uefi', domain_xml.firmware(OS_ORDER_XML))
        self.assertEqual('bios', domain_xml.firmware(DEVICE_ORDER_XML))
        self.assertEqual('uefi', domain_xml.firmware(
            '<domain><os><loader>/x/edk2-code.fd</loader></os></domain>'))

    def test_bios_to_uefi_uses_auto_selection(self):
        xml = domain_xml.set_firmware(DEVICE_ORDER_XML, 'uefi')
        self.assertEqual('efi', ET.fromstring(xml).find('os').get('firmware'))
        self.assertEqual('uefi', domain_xml.firmware(xml))

    def test_uefi_to_bios_drops_loader_nvram_and_features(self):
        xml = domain_xml.set_secure_boot(EFI_XML, True)
        xml = domain_xml.set_firmware(xml, 'bios')
        os_el = ET.fromstring(xml).find('os')
        self.assertIsNone(os_el.get('firmware'))
        self.assertEqual(['type', 'boot'], [c.tag for c in os_el])
        xml = domain_xml.set_firmware(OS_ORDER_XML, 'bios')
        self.assertEqual(['type', 'boot', 'boot'],
                         [c.tag for c in ET.fromstring(xml).find('os')])
        self.assertEqual('bios', domain_xml.firmware(xml))

    def test_same_mode_is_unchanged(self):
        self.assertIs(EFI_XML, domain_xml.set_firmware(EFI_XML, 'uefi'))


class SecureBootTestCase(testtools.TestCase):

    def features(self, xml):
        return {f.get('name'): f.get('enabled')
                for f in ET.fromstring(xml).iterfind('os/firmware/feature')}

    def test_off_by_default(self):
        self.assertFalse(domain_xml.secure_boot(EFI_XML))
        self.assertTrue(domain_xml.secure_boot(OS_ORDER_XML.replace(
            "type='pflash'", "type='pflash' secure='yes'")))

    def test_on_and_off(self):
        xml = domain_xml.set_secure_boot(EFI_XML, True)
        self.assertTrue(domain_xml.secure_boot(xml))
        self.assertEqual({'secure-boot': 'yes', 'enrolled-keys': 'yes'},
                         self.features(xml))
        # Secure boot needs SMM; the <firmware> goes right after <type>.
        self.assertEqual('on', ET.fromstring(xml).find(
            'features/smm').get('state'))
        self.assertEqual(['type', 'firmware', 'boot'],
                         [c.tag for c in ET.fromstring(xml).find('os')])
        xml = domain_xml.set_secure_boot(xml, False)
        self.assertFalse(domain_xml.secure_boot(xml))
        self.assertEqual({'secure-boot': 'no', 'enrolled-keys': 'no'},
                         self.features(xml))

    def test_needs_auto_selected_uefi(self):
        for xml in (DEVICE_ORDER_XML, OS_ORDER_XML):
            exc = self.assertRaises(errors.InvalidDomainXML,
                                    domain_xml.set_secure_boot, xml, True)
            self.assertIn('set the boot mode to uefi', str(exc))


class DisksTestCase(testtools.TestCase):

    def test_targets_and_sources(self):
        self.assertEqual(['vda'], domain_xml.disk_targets(MEDIA_XML))
        self.assertEqual(['sda', 'sdb'],
                         domain_xml.disk_targets(MEDIA_XML, 'cdrom'))
        self.assertEqual([], domain_xml.disk_targets(MEDIA_XML, 'floppy'))
        self.assertEqual('/d.qcow2', domain_xml.disk_source(MEDIA_XML, 'vda'))
        self.assertEqual('p/v', domain_xml.disk_source(MEDIA_XML, 'sda'))
        self.assertIsNone(domain_xml.disk_source(MEDIA_XML, 'sdb'))

    def test_unknown_disk(self):
        exc = self.assertRaises(errors.InvalidDomainXML,
                                domain_xml.disk_source, MEDIA_XML, 'vdz')
        self.assertIn('no disk vdz', str(exc))


class MediaDeviceTestCase(testtools.TestCase):

    def test_inserts_a_file(self):
        disk = ET.fromstring(domain_xml.media_device(MEDIA_XML, 'sda',
                                                     '/pool/x.iso'))
        self.assertEqual(('disk', 'file', 'cdrom'),
                         (disk.tag, disk.get('type'), disk.get('device')))
        self.assertEqual([{'file': '/pool/x.iso'}],
                         [s.attrib for s in disk.findall('source')])
        self.assertEqual('sda', disk.find('target').get('dev'))
        self.assertIsNotNone(disk.find('readonly'))

    def test_ejects(self):
        disk = ET.fromstring(domain_xml.media_device(MEDIA_XML, 'sda'))
        self.assertIsNone(disk.find('source'))
        self.assertEqual('sda', disk.find('target').get('dev'))

    def test_unknown_drive(self):
        self.assertRaises(errors.InvalidDomainXML, domain_xml.media_device,
                          MEDIA_XML, 'hdz')


class StorageXMLTestCase(testtools.TestCase):

    def test_volume(self):
        root = ET.fromstring(domain_xml.volume_xml('v.iso', 4096))
        self.assertEqual(('v.iso', '4096', 'bytes'),
                         (root.findtext('name'), root.findtext('capacity'),
                          root.find('capacity').get('unit')))
        self.assertEqual('raw', domain_xml.volume_format(
            domain_xml.volume_xml('v.iso', 4096)))
        self.assertIsNone(root.find('backingStore'))

    def test_overlay_volume(self):
        xml = domain_xml.volume_xml('o.qcow2', 1, fmt='qcow2',
                                    backing_path='/p/base.qcow2',
                                    backing_format='qcow2')
        self.assertEqual('qcow2', domain_xml.volume_format(xml))
        backing = ET.fromstring(xml).find('backingStore')
        self.assertEqual(('/p/base.qcow2', 'qcow2'),
                         (backing.findtext('path'),
                          backing.find('format').get('type')))

    def test_volume_without_format(self):
        self.assertIsNone(domain_xml.volume_format('<volume/>'))

    def test_dir_pool(self):
        root = ET.fromstring(domain_xml.dir_pool_xml('p', '/srv/p'))
        self.assertEqual(('dir', 'p', '/srv/p'),
                         (root.get('type'), root.findtext('name'),
                          root.findtext('target/path')))


class NewDomainTestCase(testtools.TestCase):

    def test_network_boot_machine(self):
        xml = domain_xml.new_domain_xml('n', 'qemu', 'x86_64', 512, 2,
                                        '/p/n.qcow2', 'qcow2', network='br')
        root = ET.fromstring(xml)
        self.assertEqual(('qemu', 'n', '512', '2'),
                         (root.get('type'), root.findtext('name'),
                          root.findtext('memory'), root.findtext('vcpu')))
        self.assertEqual('q35', root.find('os/type').get('machine'))
        self.assertEqual(['network', 'hd'], domain_xml.boot_order(xml))
        self.assertEqual(['vda'], domain_xml.disk_targets(xml))
        self.assertEqual(['sda'], domain_xml.disk_targets(xml, 'cdrom'))
        self.assertEqual('/p/n.qcow2', domain_xml.disk_source(xml, 'vda'))
        self.assertIsNone(domain_xml.disk_source(xml, 'sda'))
        self.assertEqual('br', root.find(
            'devices/interface/source').get('network'))
        # libvirt picks the MAC.
        self.assertEqual([], domain_xml.mac_addresses(xml))

    def test_user_mode_nic_and_other_architectures(self):
        root = ET.fromstring(domain_xml.new_domain_xml(
            'n', 'kvm', 'aarch64', 512, 1, '/p/n.raw', 'raw'))
        self.assertEqual('user', root.find('devices/interface').get('type'))
        self.assertIsNone(root.find('os/type').get('machine'))


class CloneTestCase(testtools.TestCase):

    def test_new_identity_and_disk(self):
        base = domain_xml.set_pending_restore(
            OS_ORDER_XML.replace('<os>', '<uuid>u-1</uuid><os>'), 'os:hd')
        xml = domain_xml.clone_xml(base, 'copy', 'vda', '/p/copy.qcow2',
                                   'qcow2')
        root = ET.fromstring(xml)
        self.assertEqual('copy', root.findtext('name'))
        for gone in ('uuid', 'metadata', 'os/nvram',
                     'devices/interface/mac'):
            self.assertIsNone(root.find(gone), gone)
        self.assertEqual('/p/copy.qcow2', domain_xml.disk_source(xml, 'vda'))
        self.assertEqual('qcow2', root.find(
            'devices/disk/driver').get('type'))
        # The base itself is untouched.
        self.assertEqual('/os.qcow2', domain_xml.disk_source(base, 'vda'))

    def test_unknown_disk(self):
        self.assertRaises(errors.InvalidDomainXML, domain_xml.clone_xml,
                          OS_ORDER_XML, 'c', 'vdz', '/p/c.raw', 'raw')
