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

"""A hypervisor's domains in numbers: listing them, creating many at once.

New domains either start from scratch (an empty qcow2 disk in a storage
pool, a NIC that boots from the network, an empty CD-ROM drive, a pty
serial console) or are clones of a base domain whose first disk is a
storage volume:

* ``full``: each clone gets a copy of the base volume
  (``virStorageVolCreateXMLFrom``);
* ``quick``: each clone gets a qcow2 overlay whose backing store is the
  base volume, which must therefore be qcow2 and never change again.

The base domain must be shut off so that its disk is consistent.
"""

import libvirt

from ironic_libvirt.virt import domain as domain_mod
from ironic_libvirt.virt import domain_xml
from ironic_libvirt.virt import errors
from ironic_libvirt.virt import media

FULL = 'full'
QUICK = 'quick'
CLONE_STRATEGIES = (FULL, QUICK)
GIB = 1024 ** 3

STATE_NAMES = {
    libvirt.VIR_DOMAIN_NOSTATE: 'no state',
    libvirt.VIR_DOMAIN_RUNNING: 'running',
    libvirt.VIR_DOMAIN_BLOCKED: 'blocked',
    libvirt.VIR_DOMAIN_PAUSED: 'paused',
    libvirt.VIR_DOMAIN_SHUTDOWN: 'shutting down',
    libvirt.VIR_DOMAIN_SHUTOFF: 'shut off',
    libvirt.VIR_DOMAIN_CRASHED: 'crashed',
    libvirt.VIR_DOMAIN_PMSUSPENDED: 'suspended',
}


def domains(connection):
    """Every domain of the hypervisor, sorted by name.

    :param connection: a :class:`~ironic_libvirt.virt.connection.Connection`.
    :returns: a list of :class:`~ironic_libvirt.virt.domain.Domain`.
    """
    found = connection.call(
        lambda conn: [(d.name(), d.UUIDString())
                      for d in conn.listAllDomains(0)], 'listing domains')
    return [domain_mod.Domain(connection, uuid, name)
            for name, uuid in sorted(found)]


def describe(domain):
    """What an operator wants to see of a domain.

    :returns: a dict with ``name``, ``uuid``, ``state``, ``macs``,
        ``boot_device`` (libvirt's name) and ``firmware``.
    """
    return {'name': domain.name, 'uuid': domain.uuid,
            'state': STATE_NAMES.get(domain.state(), 'unknown'),
            'macs': domain.mac_addresses(),
            'boot_device': domain.boot_device()[0],
            'firmware': domain.firmware()}


def _domain_type(conn, arch):
    if conn.getType() == 'Test':  # libvirt's embedded test hypervisor
        return 'test'
    try:
        conn.getDomainCapabilities(None, arch, None, 'kvm', 0)
    except libvirt.libvirtError:
        return 'qemu'
    return 'kvm'


def _check_free(conn, pool, names, extension):
    taken = set()
    for dom in conn.listAllDomains(0):
        taken.add(dom.name())
    volumes = set(pool.listVolumes())
    clashes = sorted(n for n in names
                     if n in taken or n + extension in volumes)
    if clashes:
        raise errors.OperationFailed(
            'domains or volumes of these names exist already: %s; choose '
            'another prefix' % ', '.join(clashes))


class _Base:
    """The base domain of clones, checked."""

    def __init__(self, conn, name, strategy):
        try:
            dom = conn.lookupByName(name)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                raise errors.DomainNotFound('there is no base domain %s'
                                            % name)
            raise
        if dom.isActive():
            raise errors.OperationFailed(
                'the base domain %s runs; shut it off so that its disk is '
                'consistent' % name)
        self.xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE
                               | libvirt.VIR_DOMAIN_XML_SECURE)
        targets = domain_xml.disk_targets(self.xml)
        if not targets:
            raise errors.InvalidDomainXML('the base domain %s has no disk'
                                          % name)
        self.target = targets[0]
        path = domain_xml.disk_source(self.xml, self.target)
        try:
            self.volume = conn.storageVolLookupByPath(path or '')
        except libvirt.libvirtError:
            raise errors.InvalidDomainXML(
                'the disk %s of the base domain %s (%s) is not a volume of '
                'a storage pool; define a pool for its directory '
                '(virsh pool-define-as NAME dir --target DIR)'
                % (self.target, name, path))
        self.path = path
        self.format = domain_xml.volume_format(self.volume.XMLDesc(0)) or 'raw'
        self.capacity = self.volume.info()[1]
        if strategy == QUICK and self.format != 'qcow2':
            raise errors.InvalidDomainXML(
                'a quick clone is a qcow2 overlay of the base disk, which '
                'must be qcow2, not %s; use --clone-strategy full'
                % self.format)


def create(connection, names, pool_name, pool_path, memory_mib=1024,
           vcpus=1, disk_gib=10, network=None, arch='x86_64', base=None,
           strategy=FULL, progress=None):
    """Define domains ``names``, from scratch or as clones of ``base``.

    Nothing is created when one of the names or their volumes exists.

    :param connection: a :class:`~ironic_libvirt.virt.connection.Connection`.
    :param pool_name: storage pool of the new disks; a directory pool at
        ``pool_path`` is created when it is missing.
    :param network: libvirt network of the NIC of new domains; None for a
        user-mode NIC. Clones keep the base's NICs (with new MACs).
    :param base: name of the base domain to clone, or None.
    :param strategy: :data:`FULL` or :data:`QUICK`.
    :param progress: called with (number done, total, name) after each.
    :returns: a list of :class:`~ironic_libvirt.virt.domain.Domain`.
    :raises: DomainNotFound if the base domain does not exist.
    :raises: InvalidDomainXML if the base cannot be cloned that way.
    :raises: OperationFailed if a name is taken or libvirt refuses.
    """
    if strategy not in CLONE_STRATEGIES:
        raise errors.OperationFailed('unknown clone strategy %r' % strategy)

    def prepare(conn):
        pool = media.ensure_pool(conn, pool_name, pool_path)
        source = _Base(conn, base, strategy) if base else None
        extension = '.qcow2' if source is None or strategy == QUICK else (
            '.' + source.format)
        _check_free(conn, pool, names, extension)
        return source, extension

    source, extension = connection.call(prepare, 'preparing the domains')
    domain_type = connection.call(lambda c: _domain_type(c, arch),
                                  'reading the domain capabilities')
    created = []
    for name in names:
        def define(conn, name=name):
            pool = conn.storagePoolLookupByName(pool_name)
            volume_name = name + extension
            if source is None:
                volume = pool.createXML(domain_xml.volume_xml(
                    volume_name, disk_gib * GIB, 'qcow2'), 0)
                xml = domain_xml.new_domain_xml(
                    name, domain_type, arch, memory_mib, vcpus,
                    volume.path(), 'qcow2', network)
            elif strategy == QUICK:
                volume = pool.createXML(domain_xml.volume_xml(
                    volume_name, source.capacity, 'qcow2',
                    backing_path=source.path, backing_format='qcow2'), 0)
                xml = domain_xml.clone_xml(source.xml, name, source.target,
                                           volume.path(), 'qcow2')
            else:
                volume = pool.createXMLFrom(domain_xml.volume_xml(
                    volume_name, source.capacity, source.format),
                    source.volume, 0)
                xml = domain_xml.clone_xml(source.xml, name, source.target,
                                           volume.path(), source.format)
            dom = conn.defineXML(xml)
            return domain_mod.Domain(connection, dom.UUIDString(), name)

        created.append(connection.call(define, 'creating domain %s' % name))
        if progress is not None:
            progress(len(created), len(names), name)
    return created
