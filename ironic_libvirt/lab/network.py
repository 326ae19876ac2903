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

"""A libvirt network for a deploy lab: a bridge whose DHCP boots Ironic.

libvirt creates the bridge, gives the host the network's first address on
it and runs dnsmasq for DHCP (and TFTP, for PXE). The host address is
where the agent in a guest finds Ironic's API and web server, and the
guests' leases are where the conductor finds the agent, so the network
needs no forwarding: it is isolated (libvirt's default without
``<forward>``).

Three ways to boot:

* ``ipxe``: the DHCP reply's file name is ``HTTP_URL/boot.ipxe``, the
  script Ironic's ``ipxe`` boot interface writes into ``[deploy]
  http_root``. QEMU's network option ROMs are iPXE, which fetches it over
  HTTP, so no TFTP server and no iPXE binary are needed (BIOS guests;
  OVMF's own PXE client speaks TFTP only).
* ``pxe``: dnsmasq serves Ironic's ``[pxe] tftp_root`` over TFTP and
  names the PXELINUX boot loader in it (``pxelinux.0`` and ``ldlinux.c32``
  from Debian's ``pxelinux`` and ``syslinux-common`` must be copied there).
* ``None``: plain DHCP, for virtual media (``libvirt-vmedia``) deploys,
  whose ISO carries the ramdisk.

This module is lab tooling: it imports libvirt, never Ironic.
"""

import ipaddress
from xml.sax import saxutils

import libvirt

BOOT_MODES = (None, 'pxe', 'ipxe')
IPXE_SCRIPT = 'boot.ipxe'
PXE_BOOTFILE = 'pxelinux.0'


class LabNetworkError(Exception):
    """The network's parameters are wrong or libvirt refused it."""


class LabNetwork(object):
    """The parameters of one lab network and what follows from them.

    :param name: the libvirt network's name.
    :param bridge: the Linux bridge's name (at most 15 characters).
    :param cidr: the host's address on the bridge with its prefix length,
        e.g. ``10.250.0.1/24``; guests lease addresses from the upper half
        of the subnet.
    :param boot: one of :data:`BOOT_MODES`.
    :param http_url: where Ironic's ``[deploy] http_root`` is served
        (required for ``ipxe``), e.g. ``http://10.250.0.1:8080``.
    :param tftp_root: Ironic's ``[pxe] tftp_root`` (required for ``pxe``).
    :param pxe_bootfile: the PXE boot loader's path in ``tftp_root``.
    :raises: LabNetworkError if a parameter is wrong or missing.
    """

    def __init__(self, name='ironic-lab', bridge='ironic-lab0',
                 cidr='10.250.0.1/24', boot=None, http_url=None,
                 tftp_root=None, pxe_bootfile=PXE_BOOTFILE):
        if boot not in BOOT_MODES:
            raise LabNetworkError('boot must be one of pxe, ipxe or none, '
                                  'not %r' % (boot,))
        if boot == 'ipxe' and not http_url:
            raise LabNetworkError('an iPXE network needs the URL of '
                                  "Ironic's [deploy] http_root (http_url)")
        if boot == 'pxe' and not tftp_root:
            raise LabNetworkError("a PXE network needs Ironic's [pxe] "
                                  'tftp_root (tftp_root)')
        if not 0 < len(bridge) <= 15:
            raise LabNetworkError('bridge name %r must have 1 to 15 '
                                  'characters' % bridge)
        try:
            self.interface = ipaddress.IPv4Interface(cidr)
        except ValueError as exc:
            raise LabNetworkError('cidr %r is not an IPv4 address with a '
                                  'prefix length: %s' % (cidr, exc))
        subnet = self.interface.network
        if subnet.num_addresses < 8 or self.interface.ip in (
                subnet.network_address, subnet.broadcast_address):
            raise LabNetworkError('cidr %r: the host address must be inside '
                                  'a subnet of at least 8 addresses' % cidr)
        self.name = name
        self.bridge = bridge
        self.boot = boot
        self.http_url = http_url.rstrip('/') if http_url else None
        self.tftp_root = tftp_root
        self.pxe_bootfile = pxe_bootfile

    @property
    def host_address(self):
        """The host's address on the bridge: Ironic's API listens here."""
        return str(self.interface.ip)

    @property
    def dhcp_range(self):
        """First and last address leased to guests (upper half)."""
        subnet = self.interface.network
        half = subnet.num_addresses // 2
        return (str(subnet.network_address + half),
                str(subnet.broadcast_address - 1))

    def boot_file(self):
        """The DHCP reply's boot file name, or None without network boot."""
        if self.boot == 'ipxe':
            return '%s/%s' % (self.http_url, IPXE_SCRIPT)
        if self.boot == 'pxe':
            return self.pxe_bootfile
        return None

    def xml(self):
        """The network's libvirt XML."""
        esc = saxutils.quoteattr
        start, end = self.dhcp_range
        tftp = bootp = ''
        if self.boot == 'pxe':
            tftp = '\n    <tftp root=%s/>' % esc(self.tftp_root)
        if self.boot is not None:
            bootp = '\n      <bootp file=%s server=%s/>' % (
                esc(self.boot_file()), esc(self.host_address))
        return ("<network>\n"
                "  <name>%(name)s</name>\n"
                "  <bridge name=%(bridge)s stp='off' delay='0'/>\n"
                "  <dns enable='no'/>\n"
                "  <ip address=%(address)s prefix=%(prefix)s>%(tftp)s\n"
                "    <dhcp>\n"
                "      <range start=%(start)s end=%(end)s/>%(bootp)s\n"
                "    </dhcp>\n"
                "  </ip>\n"
                "</network>\n" % {
                    'name': saxutils.escape(self.name),
                    'bridge': esc(self.bridge),
                    'address': esc(self.host_address),
                    'prefix': esc(str(self.interface.network.prefixlen)),
                    'tftp': tftp, 'start': esc(start), 'end': esc(end),
                    'bootp': bootp})

    def create(self, conn, autostart=False):
        """Define the network on ``conn`` and start it.

        An existing network of the same name is replaced, so that a changed
        boot mode or URL takes effect.

        :param conn: an open ``libvirt.virConnect``.
        :param autostart: whether libvirtd starts it when it starts.
        :returns: the running ``libvirt.virNetwork``.
        :raises: LabNetworkError naming the network if libvirt refuses it.
        """
        try:
            self.remove(conn)
            network = conn.networkDefineXML(self.xml())
            network.create()
            network.setAutostart(autostart)
        except libvirt.libvirtError as exc:
            raise LabNetworkError('libvirt could not start network %s '
                                  '(bridge %s, %s): %s' % (
                                      self.name, self.bridge,
                                      self.interface, exc))
        return network

    def remove(self, conn):
        """Stop and undefine the network if it exists.

        :param conn: an open ``libvirt.virConnect``.
        """
        # Listing, not a lookup by name: a failed lookup makes libvirt
        # print an error on stderr.
        for network in conn.listAllNetworks():
            if network.name() == self.name:
                if network.isActive():
                    network.destroy()
                network.undefine()

    def interface_xml(self, mac, model='virtio'):
        """A domain ``<interface>`` on this network with ``mac``."""
        return ("<interface type='network'><mac address=%s/>"
                "<source network=%s/><model type=%s/></interface>"
                % (saxutils.quoteattr(mac), saxutils.quoteattr(self.name),
                   saxutils.quoteattr(model)))
