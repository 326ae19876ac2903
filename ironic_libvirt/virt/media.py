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

"""Virtual media: images streamed into a storage pool on the hypervisor.

The conductor has the image; the hypervisor may be another host reached
over ssh, tcp or tls. The image is uploaded into a storage volume with
``virStorageVolUpload``, which streams through the libvirt connection
itself, so no shared disk or extra file transfer is needed. The drive then
gets the volume's path as its medium, in the definition and, when the
domain runs, live.

Each domain and drive has one volume, named after the domain's UUID and
the drive's target, replaced by the next insert and deleted on eject.
"""

import logging
import os

import libvirt

from ironic_libvirt.virt import domain_xml
from ironic_libvirt.virt import errors

LOG = logging.getLogger(__name__)
# Bytes per chunk sent through the stream.
_CHUNK = 1024 * 1024


def volume_name(domain, target):
    """The name of the volume that holds a domain's medium in ``target``."""
    return '%s-%s.iso' % (domain.uuid, target)


def ensure_pool(conn, name, path):
    """The started storage pool ``name``; a directory pool at ``path`` if new.

    :param conn: a ``libvirt.virConnect``.
    """
    try:
        pool = conn.storagePoolLookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_POOL:
            raise
        pool = conn.storagePoolDefineXML(domain_xml.dir_pool_xml(name, path),
                                         0)
        pool.build(0)
        pool.setAutostart(1)
    if not pool.isActive():
        pool.create(0)
    return pool


def _delete_volume(pool, name):
    try:
        volume = pool.storageVolLookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
            return
        raise
    volume.delete(0)


def _send(stream, filename):
    with open(filename, 'rb') as image:
        stream.sendAll(lambda _stream, nbytes, _opaque:
                       image.read(min(nbytes, _CHUNK)), None)
    stream.finish()


def _discard_upload(stream, volume, name):
    """Abort a failed upload and delete its volume, logging what fails."""
    try:
        stream.abort()
    except libvirt.libvirtError as exc:
        LOG.debug('Aborting the upload of %s failed: %s', name,
                  exc.get_error_message())
    try:
        volume.delete(0)
    except libvirt.libvirtError as exc:
        LOG.warning('Volume %s of a failed upload could not be deleted: %s',
                    name, exc.get_error_message())


def upload(connection, pool_name, pool_path, name, filename):
    """Upload a local file into a new volume ``name`` of a storage pool.

    A volume of that name is replaced. The pool is created as a directory
    pool at ``pool_path`` when missing, and started when inactive.

    :param connection: a :class:`~ironic_libvirt.virt.connection.Connection`.
    :returns: the volume's path on the hypervisor.
    :raises: OperationFailed if libvirt refuses a step.
    :raises: ConnectionFailed if the hypervisor cannot be reached.
    """
    size = os.path.getsize(filename)

    def run(conn):
        pool = ensure_pool(conn, pool_name, pool_path)
        _delete_volume(pool, name)
        volume = pool.createXML(domain_xml.volume_xml(name, size), 0)
        stream = conn.newStream(0)
        try:
            volume.upload(stream, 0, size, 0)
            _send(stream, filename)
        except BaseException:
            # The upload's own error is what the caller must see; a
            # failure to clean up after it is only logged.
            _discard_upload(stream, volume, name)
            raise
        return volume.path()

    return connection.call(run, 'uploading %s into storage pool %s'
                           % (name, pool_name))


def delete(connection, pool_name, name):
    """Delete volume ``name`` of a storage pool; nothing if either is gone.

    :raises: OperationFailed if libvirt refuses.
    :raises: ConnectionFailed if the hypervisor cannot be reached.
    """
    def run(conn):
        try:
            pool = conn.storagePoolLookupByName(pool_name)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_POOL:
                return
            raise
        if pool.isActive():
            _delete_volume(pool, name)

    connection.call(run, 'deleting volume %s of storage pool %s'
                    % (name, pool_name))


def _first_drive(domain, device):
    drives = domain.media(device)
    if not drives:
        raise errors.InvalidDomainXML('the domain has no %s drive' % device)
    return next(iter(drives.items()))


def insert(domain, filename, pool_name, pool_path, device='cdrom'):
    """Upload ``filename`` and put it into the domain's first drive.

    Whatever the drive held is ejected first.

    :param domain: a :class:`~ironic_libvirt.virt.domain.Domain`.
    :returns: the drive's target name.
    :raises: InvalidDomainXML if the domain has no such drive.
    :raises: OperationFailed, ConnectionFailed
    """
    target, current = _first_drive(domain, device)
    if current is not None:
        domain.change_media(target, None)
    path = upload(domain.connection, pool_name, pool_path,
                  volume_name(domain, target), filename)
    domain.change_media(target, path)
    return target


def eject(domain, pool_name, device='cdrom'):
    """Empty every drive of one kind and delete the volumes uploaded to them.

    :param domain: a :class:`~ironic_libvirt.virt.domain.Domain`.
    :raises: OperationFailed, ConnectionFailed
    """
    for target, current in domain.media(device).items():
        if current is not None:
            domain.change_media(target, None)
        delete(domain.connection, pool_name, volume_name(domain, target))


def describe(domain, device='cdrom'):
    """The domain's drives of one kind and whether this module filled them.

    :returns: a list of dicts with ``target``, ``source`` (a path or None)
        and ``uploaded`` (whether the source is this module's volume).
    """
    return [{'target': target, 'source': source,
             'uploaded': (source is not None and os.path.basename(source)
                          == volume_name(domain, target))}
            for target, source in domain.media(device).items()]
