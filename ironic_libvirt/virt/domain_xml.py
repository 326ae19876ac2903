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

"""Pure functions over libvirt domain XML strings.

The only module that parses or edits domain XML (and builds the few
storage pool and volume definitions the core needs). Every edit changes
only the elements concerned and returns a ``str``. Boot devices use libvirt's
names: ``network``, ``hd``, ``cdrom``, ``fd``.

Boot order is either ``<os><boot dev=.../>`` elements or per-device
``<boot order=N/>`` elements; libvirt refuses a mix, so an edit keeps the
style the domain already uses.
"""

import xml.etree.ElementTree as ET

from ironic_libvirt.virt import errors

NAMESPACE = 'https://opendev.org/openstack/ironic-libvirt/1'
ET.register_namespace('ironic-libvirt', NAMESPACE)
_OURS = '{%s}node' % NAMESPACE
_PENDING = '{%s}boot-restore' % NAMESPACE
_INDICATOR = '{%s}indicator' % NAMESPACE
_BIOS = '{%s}bios' % NAMESPACE
_BIOS_SETTING = '{%s}setting' % NAMESPACE

BOOT_DEVICES = ('network', 'hd', 'cdrom', 'fd')
# The firmware kinds of a domain.
FIRMWARE_BIOS = 'bios'
FIRMWARE_UEFI = 'uefi'
_DISK_KIND = {'disk': 'hd', 'cdrom': 'cdrom', 'floppy': 'fd', 'lun': 'hd'}
_OS_CHILDREN_BEFORE_BOOT = ('type', 'firmware', 'loader', 'nvram')
# A time in the past: a VNC password valid until then is accepted never.
PASSWORD_EXPIRED = '1970-01-01T00:00:01'
_VNC = "devices/graphics[@type='vnc']"


def _parse(xml):
    try:
        return ET.fromstring(xml)
    except ET.ParseError as exc:
        raise errors.InvalidDomainXML('the domain XML cannot be parsed: %s'
                                      % exc)


def _dump(root):
    return ET.tostring(root, encoding='unicode')


def _os(root):
    os_el = root.find('os')
    if os_el is None:
        raise errors.InvalidDomainXML('the domain XML has no <os> element')
    return os_el


def _device_kind(device):
    if device.tag == 'interface':
        return 'network'
    if device.tag == 'disk':
        return _DISK_KIND.get(device.get('device', 'disk'))
    return None


def _bootable_devices(root):
    devices = root.find('devices')
    if devices is None:
        return []
    return [d for d in devices if _device_kind(d) is not None]


def _ordered_devices(root):
    ordered = []
    for device in root.iterfind('devices/*'):
        boot = device.find('boot')
        if boot is not None and boot.get('order'):
            ordered.append((int(boot.get('order')), device))
    return [d for _, d in sorted(ordered, key=lambda item: item[0])]


def mac_addresses(xml):
    """MAC addresses of the domain's interfaces, lower case, in order."""
    return [mac.get('address').lower()
            for mac in _parse(xml).iterfind('devices/interface/mac')
            if mac.get('address')]


def device_kinds(xml):
    """The set of bootable device kinds the domain has."""
    return {_device_kind(d) for d in _bootable_devices(_parse(xml))}


def boot_order(xml):
    """The boot order as a list of libvirt device names.

    Per-device ``<boot order>`` wins when present (libvirt refuses a mix).
    """
    root = _parse(xml)
    ordered = _ordered_devices(root)
    if ordered:
        return [_device_kind(d) for d in ordered if _device_kind(d)]
    return [b.get('dev') for b in _os(root).iterfind('boot')]


def set_first_boot_device(xml, device):
    """Make ``device`` the first boot device, keeping the rest in order.

    :param xml: the inactive domain XML.
    :param device: one of :data:`BOOT_DEVICES`.
    :returns: the edited XML.
    :raises: InvalidDomainXML if the domain has no such device.
    """
    root = _parse(xml)
    candidates = [d for d in _bootable_devices(root)
                  if _device_kind(d) == device]
    if not candidates:
        raise errors.InvalidDomainXML('the domain has no %s device'
                                      % device)
    ordered = _ordered_devices(root)
    if ordered:
        first = [d for d in ordered if _device_kind(d) == device]
        if not first:
            first = candidates[:1]
        for position, dev in enumerate(
                first + [d for d in ordered if d not in first], start=1):
            boot = dev.find('boot')
            if boot is None:
                boot = ET.SubElement(dev, 'boot')
            boot.set('order', str(position))
        return _dump(root)

    os_el = _os(root)
    boots = os_el.findall('boot')
    order = [device] + [b.get('dev') for b in boots
                        if b.get('dev') != device]
    position = _boot_insert_position(os_el, boots)
    for boot in boots:
        os_el.remove(boot)
    for offset, dev in enumerate(order):
        el = ET.Element('boot', dev=dev)
        el.tail = boots[0].tail if boots else None
        os_el.insert(position + offset, el)
    return _dump(root)


def _boot_insert_position(os_el, boots):
    children = list(os_el)
    if boots:
        return children.index(boots[0])
    position = 0
    for index, child in enumerate(children):
        if child.tag in _OS_CHILDREN_BEFORE_BOOT:
            position = index + 1
    return position


def _device_token(device):
    if device.tag == 'interface':
        mac = device.find('mac')
        return None if mac is None else 'mac=%s' % mac.get('address', '')
    target = device.find('target')
    return None if target is None else 'disk=%s' % target.get('dev', '')


def boot_snapshot(xml):
    """The persistent boot order as a string :func:`restore_boot` takes.

    ``os:network hd`` for ``<os><boot>`` order, ``device:disk=vda
    mac=52:54:00:00:00:01`` for per-device order (disks by target, NICs by
    MAC, so that the snapshot survives unrelated edits).
    """
    root = _parse(xml)
    ordered = _ordered_devices(root)
    if ordered:
        return 'device:' + ' '.join(
            t for t in map(_device_token, ordered) if t)
    return 'os:' + ' '.join(b.get('dev') for b in _os(root).iterfind('boot'))


def restore_boot(xml, snapshot):
    """Put back a boot order taken by :func:`boot_snapshot`."""
    root = _parse(xml)
    style, _, tokens = snapshot.partition(':')
    tokens = tokens.split()
    for device in root.iterfind('devices/*'):
        for boot in device.findall('boot'):
            device.remove(boot)
    os_el = _os(root)
    boots = os_el.findall('boot')
    position = _boot_insert_position(os_el, boots)
    for boot in boots:
        os_el.remove(boot)
    if style == 'os':
        for offset, dev in enumerate(tokens):
            el = ET.Element('boot', dev=dev)
            el.tail = boots[0].tail if boots else None
            os_el.insert(position + offset, el)
        return _dump(root)
    by_token = {_device_token(d): d for d in _bootable_devices(root)}
    order = 1
    for token in tokens:
        device = by_token.get(token)
        if device is not None:
            ET.SubElement(device, 'boot', order=str(order))
            order += 1
    return _dump(root)


def _ours(root, create=False):
    """This driver's element in the domain's ``<metadata>``, or None.

    libvirt keeps one element per namespace in ``<metadata>`` and drops
    the others when a definition is saved, so everything this driver
    records lives under one element, ``<ironic-libvirt:node>``. A
    ``boot-restore`` element written directly under ``<metadata>`` by
    earlier versions is moved into it.
    """
    metadata = root.find('metadata')
    if metadata is None:
        if not create:
            return None
        metadata = ET.SubElement(root, 'metadata')
    ours = metadata.find(_OURS)
    legacy = metadata.findall(_PENDING)
    if ours is None and (create or legacy):
        ours = ET.SubElement(metadata, _OURS)
    for el in legacy:
        metadata.remove(el)
        ours.append(el)
    return ours


def _without_records(root, tag, create):
    """:func:`_ours` with every ``tag`` record removed from it.

    :returns: the element, or None if there is none and ``create`` is false.
    """
    ours = _ours(root, create=create)
    if ours is not None:
        for old in ours.findall(tag):
            ours.remove(old)
    return ours


def _drop_if_empty(root):
    metadata = root.find('metadata')
    ours = None if metadata is None else metadata.find(_OURS)
    if ours is not None and not len(ours):
        metadata.remove(ours)
    if metadata is not None and not len(metadata):
        root.remove(metadata)


def pending_restore(xml):
    """The boot order to restore after a one-time boot, or None."""
    ours = _ours(_parse(xml))
    el = None if ours is None else ours.find(_PENDING)
    return None if el is None else el.get('order')


def set_pending_restore(xml, snapshot):
    """Record (or, with ``snapshot=None``, clear) a boot order to restore.

    The record lives in the domain's ``<metadata>``, so it survives a
    conductor restart.
    """
    root = _parse(xml)
    ours = _without_records(root, _PENDING, create=snapshot is not None)
    if snapshot is not None:
        ET.SubElement(ours, _PENDING, order=snapshot)
    _drop_if_empty(root)
    return _dump(root)


def indicator_states(xml):
    """Indicator states kept in the domain's metadata.

    :returns: a dict of (component, indicator) -> state, for those set.
    """
    ours = _ours(_parse(xml))
    if ours is None:
        return {}
    return {(el.get('component'), el.get('id')): el.get('state')
            for el in ours.iterfind(_INDICATOR)}


def set_indicator_state(xml, component, indicator, state):
    """Record an indicator's state in the domain's metadata."""
    root = _parse(xml)
    ours = _ours(root, create=True)
    for el in ours.findall(_INDICATOR):
        if (el.get('component'), el.get('id')) == (component, indicator):
            ours.remove(el)
    ET.SubElement(ours, _INDICATOR, component=component, id=indicator,
                  state=state)
    return _dump(root)


def manufacturer(xml):
    """The SMBIOS system manufacturer the domain declares, or None."""
    return _parse(xml).findtext(
        "sysinfo[@type='smbios']/system/entry[@name='manufacturer']")


def domain_type(xml):
    """The domain's type (``kvm``, ``qemu``, ``test``...)."""
    return _parse(xml).get('type')


def bios_record(xml):
    """The BIOS settings record kept in the domain's metadata, or None.

    :returns: None, or a dict with ``factory`` (a dict with ``firmware``,
        ``'uefi'`` or ``'bios'``, and ``secure_boot``, a boolean: the
        domain's firmware before the first change) and ``settings`` (a dict
        of setting name -> value, both strings).
    """
    ours = _ours(_parse(xml))
    el = None if ours is None else ours.find(_BIOS)
    if el is None:
        return None
    return {'factory': {'firmware': el.get('factory-firmware', 'bios'),
                        'secure_boot':
                            el.get('factory-secure-boot') == 'yes'},
            'settings': {s.get('name'): s.get('value', '')
                         for s in el.iterfind(_BIOS_SETTING)
                         if s.get('name')}}


def set_bios_record(xml, record):
    """Write (or, with ``record=None``, remove) the BIOS settings record.

    :param record: a dict shaped as :func:`bios_record` returns, or None.
    """
    root = _parse(xml)
    ours = _without_records(root, _BIOS, create=record is not None)
    if record is not None:
        factory = record['factory']
        el = ET.SubElement(ours, _BIOS, {
            'factory-firmware': factory['firmware'],
            'factory-secure-boot': 'yes' if factory['secure_boot'] else 'no'})
        for name_, value in sorted(record['settings'].items()):
            ET.SubElement(el, _BIOS_SETTING, name=name_, value=value)
    _drop_if_empty(root)
    return _dump(root)


def firmware(xml):
    """:data:`FIRMWARE_UEFI` or :data:`FIRMWARE_BIOS`."""
    os_el = _os(_parse(xml))
    if os_el.get('firmware') == 'efi':
        return FIRMWARE_UEFI
    loader = os_el.find('loader')
    if loader is not None and (loader.get('type') == 'pflash'
                               or 'OVMF' in (loader.text or '')
                               or 'edk2' in (loader.text or '')):
        return FIRMWARE_UEFI
    return FIRMWARE_BIOS


def set_firmware(xml, mode):
    """Switch the domain to :data:`FIRMWARE_UEFI` or :data:`FIRMWARE_BIOS`.

    UEFI uses libvirt's firmware auto-selection (``<os firmware='efi'>``);
    BIOS removes the UEFI loader, NVRAM and firmware features.
    """
    root = _parse(xml)
    os_el = _os(root)
    if firmware(xml) == mode:
        return xml
    if mode == FIRMWARE_UEFI:
        os_el.set('firmware', 'efi')
    else:
        os_el.attrib.pop('firmware', None)
        for tag in ('loader', 'nvram', 'firmware'):
            for el in os_el.findall(tag):
                os_el.remove(el)
    return _dump(root)


def secure_boot(xml):
    """Whether UEFI secure boot is enabled in the domain's definition."""
    os_el = _os(_parse(xml))
    loader = os_el.find('loader')
    if loader is not None and loader.get('secure') == 'yes':
        return True
    feature = os_el.find("firmware/feature[@name='secure-boot']")
    return feature is not None and feature.get('enabled') == 'yes'


def set_secure_boot(xml, enabled):
    """Enable or disable UEFI secure boot through firmware auto-selection.

    :raises: InvalidDomainXML if the domain does not boot UEFI through
        auto-selection (an explicit loader path cannot be switched safely).
    """
    root = _parse(xml)
    os_el = _os(root)
    if os_el.get('firmware') != 'efi':
        raise errors.InvalidDomainXML(
            'secure boot needs UEFI firmware chosen by libvirt '
            "(<os firmware='efi'>); set the boot mode to uefi first")
    value = 'yes' if enabled else 'no'
    firmware_el = os_el.find('firmware')
    if firmware_el is None:
        firmware_el = ET.Element('firmware')
        type_el = os_el.find('type')
        os_el.insert(0 if type_el is None else list(os_el).index(type_el) + 1,
                     firmware_el)
    for name in ('secure-boot', 'enrolled-keys'):
        feature = firmware_el.find("feature[@name='%s']" % name)
        if feature is None:
            feature = ET.SubElement(firmware_el, 'feature', name=name)
        feature.set('enabled', value)
    loader = os_el.find('loader')
    if loader is not None and loader.get('secure'):
        loader.set('secure', value)
    if enabled:
        features = root.find('features')
        if features is None:
            features = ET.SubElement(root, 'features')
        if features.find('smm') is None:
            ET.SubElement(features, 'smm', state='on')
    return _dump(root)


def architecture(xml):
    """The guest architecture (``<os><type arch=...>``), or None."""
    type_el = _os(_parse(xml)).find('type')
    return None if type_el is None else type_el.get('arch')


def _disks(root, device):
    return [d for d in root.iterfind('devices/disk')
            if d.get('device', 'disk') == device
            and d.find('target') is not None]


def disk_targets(xml, device='disk'):
    """Targets (``vda``, ``sda``...) of the disks of one kind, in order.

    :param device: ``disk``, ``cdrom``, ``floppy`` or ``lun``.
    """
    return [d.find('target').get('dev') for d in _disks(_parse(xml), device)]


def _disk(root, target):
    for disk in root.iterfind('devices/disk'):
        target_el = disk.find('target')
        if target_el is not None and target_el.get('dev') == target:
            return disk
    raise errors.InvalidDomainXML('the domain has no disk %s' % target)


def disk_source(xml, target):
    """What a disk holds: a path, ``POOL/VOLUME``, a network name, or None.

    :raises: InvalidDomainXML if the domain has no such disk.
    """
    source = _disk(_parse(xml), target).find('source')
    if source is None:
        return None
    if source.get('pool') and source.get('volume'):
        return '%s/%s' % (source.get('pool'), source.get('volume'))
    return source.get('file') or source.get('dev') or source.get('name')


def media_device(xml, target, path=None):
    """The ``<disk>`` element of a removable disk holding ``path``.

    The result is what ``virDomainUpdateDeviceFlags`` takes to change the
    medium: the disk as defined, with ``<source file=path>`` or, when
    ``path`` is None, no source (an empty drive).

    :raises: InvalidDomainXML if the domain has no such disk.
    """
    disk = _disk(_parse(xml), target)
    for old in disk.findall('source') + disk.findall('backingStore'):
        disk.remove(old)
    disk.set('type', 'file')
    if path is not None:
        source = ET.Element('source', file=path)
        source.tail = disk.text
        disk.insert(0, source)
    disk.tail = None
    return _dump(disk)


def vnc(xml):
    """The domain's VNC server, or None if it has none.

    :returns: a dict with ``listen`` (the address, or None), ``port`` (an
        int, or None until the domain runs with an automatic port) and
        ``password`` (present only in secure XML, else None).
    """
    graphics = _parse(xml).find(_VNC)
    if graphics is None:
        return None
    listen = graphics.get('listen')
    listen_el = graphics.find('listen')
    if listen_el is not None and listen_el.get('type') == 'address':
        listen = listen_el.get('address') or listen
    port = graphics.get('port')
    port = int(port) if port and int(port) > 0 else None
    return {'listen': listen, 'port': port,
            'password': graphics.get('passwd')}


def _set_password(graphics, password, expired):
    graphics.set('passwd', password)
    if expired:
        graphics.set('passwdValidTo', PASSWORD_EXPIRED)
    else:
        graphics.attrib.pop('passwdValidTo', None)


def set_vnc(xml, listen, password, expired=False):
    """The domain with a password-protected VNC server on ``listen``.

    An existing VNC server keeps its other settings (a fixed port,
    keymap); listening on a UNIX socket or on other addresses is replaced
    by ``listen``. Without one, a VNC server with an automatic port is
    added, and libvirt adds a video card when the domain is defined.

    :param listen: the IP address QEMU listens on.
    :param password: the VNC password (at most 8 characters count).
    :param expired: if True, the password is already expired, so that no
        password is accepted.
    """
    root = _parse(xml)
    graphics = root.find(_VNC)
    if graphics is None:
        devices = root.find('devices')
        if devices is None:
            devices = ET.SubElement(root, 'devices')
        graphics = ET.SubElement(devices, 'graphics', type='vnc',
                                 port='-1', autoport='yes')
    for old in graphics.findall('listen'):
        graphics.remove(old)
    graphics.attrib.pop('socket', None)
    graphics.set('listen', listen)
    ET.SubElement(graphics, 'listen', type='address', address=listen)
    _set_password(graphics, password, expired)
    return _dump(root)


def vnc_device(xml, password, expired=False):
    """The running domain's ``<graphics type='vnc'>`` with a new password.

    The result is what ``virDomainUpdateDeviceFlags`` takes to change the
    password of a running VNC server: the device as it runs (libvirt
    refuses a change of address or port), with only the password changed.

    :raises: InvalidDomainXML if the domain has no VNC server.
    """
    graphics = _parse(xml).find(_VNC)
    if graphics is None:
        raise errors.InvalidDomainXML('the domain has no VNC server')
    _set_password(graphics, password, expired)
    graphics.tail = None
    return _dump(graphics)


def volume_xml(name, capacity_bytes, fmt='raw', backing_path=None,
               backing_format=None):
    """A storage volume definition.

    :param backing_path: path of a volume this one is an overlay of.
    """
    root = ET.Element('volume')
    ET.SubElement(root, 'name').text = name
    ET.SubElement(root, 'capacity', unit='bytes').text = str(capacity_bytes)
    target = ET.SubElement(root, 'target')
    ET.SubElement(target, 'format', type=fmt)
    if backing_path is not None:
        backing = ET.SubElement(root, 'backingStore')
        ET.SubElement(backing, 'path').text = backing_path
        ET.SubElement(backing, 'format', type=backing_format or 'raw')
    return _dump(root)


def volume_format(xml):
    """The format of a storage volume from its XML (``qcow2``, ``raw``...)."""
    fmt = _parse(xml).find('target/format')
    return None if fmt is None else fmt.get('type')


def dir_pool_xml(name, path):
    """A storage pool of type ``dir`` at ``path``."""
    root = ET.Element('pool', type='dir')
    ET.SubElement(root, 'name').text = name
    ET.SubElement(ET.SubElement(root, 'target'), 'path').text = path
    return _dump(root)


def new_domain_xml(name, domain_type, arch, memory_mib, vcpus, disk_path,
                   disk_format, network=None):
    """A network-booting machine with one disk, an empty CD-ROM and a NIC.

    libvirt picks the emulator, the MAC address and the machine's
    controllers; the serial console is a pty.

    :param domain_type: ``kvm`` or ``qemu``.
    :param network: a libvirt network name, or None for a user-mode NIC.
    """
    root = ET.Element('domain', type=domain_type)
    ET.SubElement(root, 'name').text = name
    ET.SubElement(root, 'memory', unit='MiB').text = str(memory_mib)
    ET.SubElement(root, 'vcpu').text = str(vcpus)
    os_el = ET.SubElement(root, 'os')
    type_el = ET.SubElement(os_el, 'type', arch=arch)
    type_el.text = 'hvm'
    if arch in ('x86_64', 'i686'):
        type_el.set('machine', 'q35')
    ET.SubElement(os_el, 'boot', dev='network')
    ET.SubElement(os_el, 'boot', dev='hd')
    features = ET.SubElement(root, 'features')
    ET.SubElement(features, 'acpi')
    devices = ET.SubElement(root, 'devices')
    disk = ET.SubElement(devices, 'disk', type='file', device='disk')
    ET.SubElement(disk, 'driver', name='qemu', type=disk_format)
    ET.SubElement(disk, 'source', file=disk_path)
    ET.SubElement(disk, 'target', dev='vda', bus='virtio')
    cdrom = ET.SubElement(devices, 'disk', type='file', device='cdrom')
    ET.SubElement(cdrom, 'driver', name='qemu', type='raw')
    ET.SubElement(cdrom, 'target', dev='sda', bus='sata')
    ET.SubElement(cdrom, 'readonly')
    if network is None:
        nic = ET.SubElement(devices, 'interface', type='user')
    else:
        nic = ET.SubElement(devices, 'interface', type='network')
        ET.SubElement(nic, 'source', network=network)
    ET.SubElement(nic, 'model', type='virtio')
    serial = ET.SubElement(devices, 'serial', type='pty')
    ET.SubElement(serial, 'target', port='0')
    console = ET.SubElement(devices, 'console', type='pty')
    ET.SubElement(console, 'target', type='serial', port='0')
    return _dump(root)


def clone_xml(xml, name, target, disk_path, disk_format):
    """A copy of a domain under a new name, with its own disk and identity.

    The UUID, MAC addresses, NVRAM path and this driver's metadata are
    dropped so that libvirt gives the clone its own; the disk ``target``
    gets ``disk_path``.

    :raises: InvalidDomainXML if the domain has no such disk.
    """
    root = _parse(xml)
    root.find('name').text = name
    for tag in ('uuid', 'metadata'):
        for el in root.findall(tag):
            root.remove(el)
    for nvram in root.findall('os/nvram'):
        _os(root).remove(nvram)
    for nic in root.iterfind('devices/interface'):
        for mac in nic.findall('mac'):
            nic.remove(mac)
    disk = _disk(root, target)
    for old in disk.findall('source') + disk.findall('backingStore'):
        disk.remove(old)
    disk.set('type', 'file')
    driver = disk.find('driver')
    if driver is None:
        driver = ET.SubElement(disk, 'driver', name='qemu')
    driver.set('type', disk_format)
    disk.insert(list(disk).index(driver) + 1,
                ET.Element('source', file=disk_path))
    return _dump(root)
