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

"""Which domain a node is: resolved once, remembered, re-checked.

A node names its domain (driver_info ``libvirt_domain``) or is found by
the MAC addresses of its ports. The answer is remembered in the node's
``driver_internal_info`` (so another conductor knows it after a takeover)
and in this process. Under an exclusive lock, where every change of a
domain happens, a domain found by MAC is checked to still have one of the
node's MACs; the power state sync, under a shared lock, trusts the
remembered answer and reads no ports.

:data:`RESOLVER` is the process's one :class:`DomainResolver`; it also
holds the connection cache. ``RESOLVER.reset()`` forgets everything, as a
conductor restart would.
"""

import threading
import weakref

from oslo_config import cfg
from oslo_log import log

from ironic_libvirt.drivers import driver_info
from ironic_libvirt.drivers import exception
from ironic_libvirt.virt import connection as virt_connection
from ironic_libvirt.virt import domain as virt_domain
from ironic_libvirt.virt import errors
from ironic_libvirt.virt import locator as virt_locator

CONF = cfg.CONF
LOG = log.getLogger(__name__)

# driver_internal_info key remembering how the domain was resolved.
RESOLVED_KEY = 'libvirt_domain_resolved'
# Kinds of reading a shared task hands on (DomainResolver.hand_on): the
# domain's (state, reason), and its definition without secrets.
STATE_READING = 'state'
DEFINITION_READING = 'definition'


class DomainResolver:
    """Finds and remembers nodes' domains; owns the process's connections."""

    def __init__(self):
        self._lock = threading.Lock()
        self._connections = None
        self._parsed = driver_info.ParsedMemo()
        self._locator = virt_locator.DomainLocator()
        # node UUID -> what RESOLVED_KEY holds, or None to ignore a stale
        # record that a shared task could not delete.
        self._remembered = {}
        # exclusive task -> UUID of the domain checked to have its MACs.
        self._checked = weakref.WeakKeyDictionary()
        # shared task -> {kind: reading} kept for the next read of it.
        self._readings = weakref.WeakKeyDictionary()

    def connections(self):
        """The connection cache, built from [libvirt] on first use."""
        with self._lock:
            if self._connections is None:
                self._connections = virt_connection.ConnectionCache(
                    size=CONF.libvirt.connection_cache_size,
                    settings=virt_connection.ConnectionSettings(
                        keepalive_interval=CONF.libvirt.keepalive_interval,
                        keepalive_count=CONF.libvirt.keepalive_count,
                        open_timeout=CONF.libvirt.open_timeout))
            return self._connections

    def reset(self):
        """Forget everything, as a restart would; close every connection.

        The connection cache is rebuilt from the configuration of its next
        use. For tests and the benchmark.
        """
        with self._lock:
            connections, self._connections = self._connections, None
        if connections is not None:
            connections.close_all()
        self._parsed.clear()
        self._locator.reset()
        self._remembered.clear()

    def hand_on(self, task, kind, reading):
        """Keep ``reading`` for one :meth:`take` of ``kind``; return it.

        Ironic's power sync asks one shared task for the power state, then
        the health; for the boot mode, then secure boot. Each pair needs
        one libvirt call, not two. Only a shared task keeps a reading: it
        changes nothing, and an upgraded (exclusive) task reads afresh.
        """
        if task.shared:
            self._readings.setdefault(task, {})[kind] = reading
        return reading

    def take(self, task, kind):
        """The reading of ``kind`` kept for this shared task, once; or None."""
        if not task.shared:
            return None
        return self._readings.get(task, {}).pop(kind, None)

    def with_domain(self, task, action, func):
        """Run ``func(domain)`` on the node's domain.

        If a remembered domain has vanished or lost the node's MACs, it is
        forgotten and the domain is resolved again.

        :param task: a TaskManager instance.
        :param action: what is done, for error messages (e.g. "power on").
        :param func: a callable taking a
            :class:`~ironic_libvirt.virt.domain.Domain`.
        :returns: what ``func`` returns.
        :raises: InvalidParameterValue, MissingParameterValue on bad
            driver_info.
        :raises: TemporaryFailure if the hypervisor cannot be reached.
        :raises: InvalidParameterValue if the hypervisor refuses the
            credentials or the domain cannot be found.
        :raises: DriverOperationError if libvirt fails the action
            (see :mod:`ironic_libvirt.drivers.exception`).
        """
        info = self._parsed.get(task.node)
        connection = self.connections().get(info.params)
        key = [info.params.uri, info.domain]
        try:
            remembered = self._remembered_for(task, key)
            if remembered is not None:
                domain = virt_domain.Domain(
                    connection, remembered['uuid'], remembered['name'])
                try:
                    reason = self._why_not_act_on(task, info, domain,
                                                  remembered['macs'])
                    if reason is None:
                        return func(domain)
                except errors.DomainNotFound:
                    reason = 'is gone'
                LOG.info('Node %(node)s: domain %(domain)s %(reason)s; '
                         'looking for the domain again.',
                         {'node': task.node.uuid, 'domain': domain.name,
                          'reason': reason})
                self._record(task, None)
                self._locator.forget(connection, domain.uuid)
            macs = None if info.domain else driver_info.port_macs(task)
            domain = self._resolve(task, info, connection, macs)
            if self._why_not_act_on(task, info, domain, macs) is not None:
                # The MAC index is older than a change of the domain's NICs.
                self._locator.forget(connection, domain.uuid)
                domain = self._resolve(task, info, connection, macs)
            self._record(task, {'key': key, 'uuid': domain.uuid,
                                'name': domain.name, 'macs': macs})
            return func(domain)
        except errors.LibvirtCoreError as exc:
            raise exception.from_core(exc, task.node.uuid, action,
                                      info) from exc

    def _remembered_for(self, task, key):
        """The remembered resolution if it was made for ``key``, else None.

        :returns: a dict with ``key``, ``uuid``, ``name`` and ``macs`` (the
            port MACs it was found by, or None).
        """
        node = task.node
        try:
            entry = self._remembered[node.uuid]
        except KeyError:
            entry = node.driver_internal_info.get(RESOLVED_KEY)
        if entry is not None and entry.get('key') == key:
            return entry
        return None

    def _record(self, task, entry):
        """Remember a resolution (None: forget it).

        The node record, which another conductor reads, changes only under
        an exclusive lock; a shared task remembers in this process only.
        """
        node = task.node
        self._remembered[node.uuid] = entry
        if task.shared:
            return
        if entry is None:
            node.del_driver_internal_info(RESOLVED_KEY)
        else:
            node.set_driver_internal_info(RESOLVED_KEY, entry)

    def _why_not_act_on(self, task, info, domain, macs):
        """Why a domain found by MAC may not be acted on, or None.

        An operator may have changed the node's ports or moved a MAC to
        another domain since the domain was found. Under an exclusive lock
        that is checked once per task (one libvirt call); a shared task
        trusts the resolution and reads no ports.

        :param macs: the port MACs the domain was found by.
        """
        if info.domain is not None or task.shared:
            return None
        if self._checked.get(task) == domain.uuid:
            return None
        ports = driver_info.port_macs(task)
        if macs != ports:
            return "was found by MAC addresses the node's ports no longer have"
        if not set(domain.mac_addresses()) & set(ports):
            return "no longer has the node's MAC addresses"
        self._checked[task] = domain.uuid
        return None

    def _resolve(self, task, info, connection, macs):
        if info.domain is not None:
            return self._locator.by_ident(connection, info.domain)
        driver_info.check_identity(task, info)
        return self._locator.by_macs(connection, macs)


RESOLVER = DomainResolver()


def with_domain(task, action, func):
    """Run ``func(domain)`` on the node's domain.

    See :meth:`DomainResolver.with_domain`.
    """
    return RESOLVER.with_domain(task, action, func)
