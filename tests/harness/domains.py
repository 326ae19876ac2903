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

"""Domain XML that a real QEMU (TCG, no KVM) starts in well under 1 s."""

import glob
import pathlib
from xml.sax import saxutils

# QEMU firmware descriptors (from the ovmf package) that libvirt's
# <os firmware='efi'> auto-selection reads.
_EFI_DESCRIPTORS = '/usr/share/qemu/firmware/*edk2-x86_64*.json'


def ovmf_available():
    """Whether UEFI (OVMF) domains can be defined here."""
    return bool(glob.glob(_EFI_DESCRIPTORS))


def create_disk(path, size_mib=16):
    """Create a sparse raw disk image (qemu-img is not installed)."""
    with open(path, 'wb') as image:
        image.truncate(size_mib * 1024 * 1024)
    return pathlib.Path(path)


_SLIRP_INTERFACE = """<interface type='user'>
      <mac address=%s/>
      <model type='virtio'/>
    </interface>"""
_PTY_SERIAL = """<serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>"""


def minimal_domain_xml(name, mac, uuid=None, firmware=None, disk=None,
                       memory_mib=32, interface_xml=None, serial_xml=None):
    """XML for a small q35 domain that boots from the network.

    ``<boot dev='network'/>``, no memory balloon, an empty SATA cdrom (for
    virtual media) and, unless told otherwise, 32 MiB, a pty serial
    console and one user-mode (SLIRP) NIC, which needs neither a bridge
    nor dnsmasq.

    :param firmware: None for BIOS (SeaBIOS), 'efi' for OVMF without
        secure boot (see ovmf_available()).
    :param disk: path of a raw disk image to attach as vda (create_disk).
    :param interface_xml: the ``<interface>`` element, instead of SLIRP.
    :param serial_xml: the serial device(s), instead of a pty.
    """
    esc = saxutils.quoteattr
    if firmware not in (None, 'efi'):
        raise ValueError('firmware must be None or "efi", not %r' % firmware)
    uuid_xml = '<uuid>%s</uuid>' % uuid if uuid else ''
    if firmware == 'efi':
        os_open = ("<os firmware='efi'><firmware>"
                   "<feature enabled='no' name='secure-boot'/>"
                   "<feature enabled='no' name='enrolled-keys'/>"
                   "</firmware>")
    else:
        os_open = '<os>'
    disk_xml = ''
    if disk is not None:
        disk_xml = ("<disk type='file' device='disk'>"
                    "<driver name='qemu' type='raw'/>"
                    "<source file=%s/><target dev='vda' bus='virtio'/>"
                    "</disk>" % esc(str(disk)))
    if interface_xml is None:
        interface_xml = _SLIRP_INTERFACE % esc(mac)
    return f"""<domain type='qemu'>
  <name>{saxutils.escape(name)}</name>
  {uuid_xml}
  <memory unit='MiB'>{int(memory_mib)}</memory>
  <vcpu>1</vcpu>
  {os_open}
    <type arch='x86_64' machine='q35'>hvm</type>
    <boot dev='network'/>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    {disk_xml}
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    {interface_xml}
    {serial_xml or _PTY_SERIAL}
    <memballoon model='none'/>
  </devices>
</domain>
"""
