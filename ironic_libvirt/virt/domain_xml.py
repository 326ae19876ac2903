"""Pure functions over libvirt domain XML strings.

The only module that parses or edits domain XML. Every edit changes only
the elements concerned and returns a ``str``. Boot devices use libvirt's
names: ``network``, ``hd``, ``cdrom``, ``fd``.

Boot order is either ``<os><boot dev=.../>`` elements or per-device
``<boot order=N/>`` elements; libvirt refuses a mix, so an edit keeps the
style the domain already uses.
"""

import xml.etree.ElementTree as ET

from ironic_libvirt.virt import errors

NAMESPACE = 'https://opendev.org/openstack/ironic-libvirt/1'
ET.register_namespace('ironic-libvirt', NAMESPACE)
_PENDING = '{%s}boot-restore' % NAMESPACE

BOOT_DEVICES = ('network', 'hd', 'cdrom', 'fd')
_DISK_KIND = {'disk': 'hd', 'cdrom': 'cdrom', 'floppy': 'fd', 'lun': 'hd'}
_OS_CHILDREN_BEFORE_BOOT = ('type', 'firmware', 'loader', 'nvram')


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


def name(xml):
    """The domain's name."""
    return _parse(xml).findtext('name')


def uuid(xml):
    """The domain's UUID."""
    return _parse(xml).findtext('uuid')


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


def pending_restore(xml):
    """The boot order to restore after a one-time boot, or None."""
    el = _parse(xml).find('metadata/%s' % _PENDING)
    return None if el is None else el.get('order')


def set_pending_restore(xml, snapshot):
    """Record (or, with ``snapshot=None``, clear) a boot order to restore.

    The record lives in the domain's ``<metadata>``, so it survives a
    conductor restart.
    """
    root = _parse(xml)
    metadata = root.find('metadata')
    if metadata is not None:
        for old in metadata.findall(_PENDING):
            metadata.remove(old)
        if snapshot is None and not len(metadata):
            root.remove(metadata)
    if snapshot is not None:
        if metadata is None:
            metadata = ET.SubElement(root, 'metadata')
        ET.SubElement(metadata, _PENDING, order=snapshot)
    return _dump(root)


def firmware(xml):
    """``'uefi'`` or ``'bios'``."""
    os_el = _os(_parse(xml))
    if os_el.get('firmware') == 'efi':
        return 'uefi'
    loader = os_el.find('loader')
    if loader is not None and (loader.get('type') == 'pflash'
                               or 'OVMF' in (loader.text or '')
                               or 'edk2' in (loader.text or '')):
        return 'uefi'
    return 'bios'


def set_firmware(xml, mode):
    """Switch the domain to ``'uefi'`` or ``'bios'`` firmware.

    UEFI uses libvirt's firmware auto-selection (``<os firmware='efi'>``);
    BIOS removes the UEFI loader, NVRAM and firmware features.
    """
    root = _parse(xml)
    os_el = _os(root)
    if firmware(xml) == mode:
        return xml
    if mode == 'uefi':
        os_el.set('firmware', 'efi')
    else:
        os_el.attrib.pop('firmware', None)
        for tag in ('loader', 'nvram', 'firmware'):
            for el in os_el.findall(tag):
                os_el.remove(el)
    return _dump(root)


def _secure_boot_feature(os_el):
    for feature in os_el.iterfind('firmware/feature'):
        if feature.get('name') == 'secure-boot':
            return feature
    return None


def secure_boot(xml):
    """Whether UEFI secure boot is enabled in the domain's definition."""
    os_el = _os(_parse(xml))
    loader = os_el.find('loader')
    if loader is not None and loader.get('secure') == 'yes':
        return True
    feature = _secure_boot_feature(os_el)
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
        os_el.insert(list(os_el).index(os_el.find('type')) + 1
                     if os_el.find('type') is not None else 0, firmware_el)
    for name in ('secure-boot', 'enrolled-keys'):
        feature = next((f for f in firmware_el.iterfind('feature')
                        if f.get('name') == name), None)
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
