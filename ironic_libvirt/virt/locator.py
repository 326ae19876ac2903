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

"""Finding a node's domain: by name or UUID, else by MAC addresses.

Looking up by name or UUID is one libvirt call. Finding by MAC address
would mean reading every domain's XML; instead one scan of a hypervisor
builds a MAC index that serves every later lookup in O(1), and a miss
re-scans once. Concurrent misses on one hypervisor share one scan.
"""

import threading
import uuid as uuidlib
import weakref

import libvirt

from ironic_libvirt.virt import domain as domain_mod
from ironic_libvirt.virt import errors


def _is_uuid(value):
    try:
        uuidlib.UUID(value)
    except ValueError:
        return False
    return True


class _MacIndex:
    """MAC address -> set of domain UUIDs, and UUID -> name, of one scan."""

    def __init__(self):
        self.lock = threading.Lock()
        self.generation = 0
        self.by_mac = {}
        self.names = {}

    def rebuild(self, connection):
        def scan(conn):
            by_mac, names = {}, {}
            for dom in conn.listAllDomains(0):
                try:
                    macs = domain_mod.definition_macs(dom)
                except libvirt.libvirtError as exc:
                    if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                        continue  # undefined while we were scanning
                    raise
                uuid = dom.UUIDString()
                names[uuid] = dom.name()
                for mac in macs:
                    by_mac.setdefault(mac, set()).add(uuid)
            return by_mac, names

        self.by_mac, self.names = connection.call(
            scan, 'scanning the domains for MAC addresses')
        self.generation += 1

    def match(self, macs):
        return set().union(*(self.by_mac.get(m, ()) for m in macs))


class DomainLocator:
    """Finds domains; keeps one MAC index per connection."""

    def __init__(self):
        self._guard = threading.Lock()
        self._indexes = weakref.WeakKeyDictionary()

    def reset(self):
        """Forget every MAC index."""
        with self._guard:
            self._indexes.clear()

    def _index(self, connection):
        with self._guard:
            index = self._indexes.get(connection)
            if index is None:
                index = self._indexes[connection] = _MacIndex()
            return index

    def by_ident(self, connection, ident):
        """Find a domain by UUID or name.

        :raises: DomainNotFound
        """
        def lookup(conn):
            if _is_uuid(ident):
                try:
                    return conn.lookupByUUIDString(ident)
                except libvirt.libvirtError as exc:
                    if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                        raise
            return conn.lookupByName(ident)

        dom = connection.call(lookup, 'looking up domain %s' % ident)
        return domain_mod.Domain(connection, dom.UUIDString(), dom.name())

    def by_macs(self, connection, macs):
        """Find the one domain that has any of ``macs``.

        No libvirt call is made when the index already knows the MACs.

        :param macs: MAC addresses, any case.
        :raises: DomainNotFound if no domain has any of them.
        :raises: AmbiguousDomain if several domains have them.
        """
        macs = sorted({m.lower() for m in macs})
        index = self._index(connection)
        seen = index.generation
        found = index.match(macs)
        if not found:
            with index.lock:
                if index.generation == seen:
                    index.rebuild(connection)
                found = index.match(macs)
        if not found:
            raise errors.DomainNotFound(
                'no domain on %s has any of the MAC addresses %s'
                % (connection.params.uri, ', '.join(macs)))
        if len(found) > 1:
            names = sorted(index.names.get(u, u) for u in found)
            raise errors.AmbiguousDomain(
                'several domains on %s have the MAC addresses %s: %s'
                % (connection.params.uri, ', '.join(macs), ', '.join(names)),
                names)
        uuid = found.pop()
        return domain_mod.Domain(connection, uuid, index.names.get(uuid))

    def forget(self, connection, uuid):
        """Drop a domain that turned out to be gone from the index."""
        index = self._index(connection)
        with index.lock:
            for uuids in index.by_mac.values():
                uuids.discard(uuid)
            index.names.pop(uuid, None)
