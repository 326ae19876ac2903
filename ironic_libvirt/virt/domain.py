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

"""A libvirt domain seen through intentions: power on, force off, boot from.

A :class:`Domain` holds a :class:`~ironic_libvirt.virt.connection.Connection`
and the domain's UUID; the connection keeps the domain's handle for as long
as its link lives, so a call is one round trip and survives a reconnect.
XML edits read the inactive, secure XML, change it with
:mod:`~ironic_libvirt.virt.domain_xml` and define it back, one edit of a
domain at a time in this process.
"""

import logging
import threading
import weakref

import libvirt

from ironic_libvirt.virt import domain_xml

LOG = logging.getLogger(__name__)

# Reads leave secrets (a VNC password) on the hypervisor; an edit must
# carry them into the definition it writes back.
_INACTIVE_XML = libvirt.VIR_DOMAIN_XML_INACTIVE
_INACTIVE_SECURE_XML = _INACTIVE_XML | libvirt.VIR_DOMAIN_XML_SECURE

# Every libvirt domain state, with what it means for the machine's power.
POWER_ON = 'on'
POWER_OFF = 'off'
POWER_ERROR = 'error'
POWER_STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: POWER_ERROR,   # no state reported
    libvirt.VIR_DOMAIN_RUNNING: POWER_ON,
    libvirt.VIR_DOMAIN_BLOCKED: POWER_ON,      # running, waiting on I/O
    libvirt.VIR_DOMAIN_PAUSED: POWER_ON,       # QEMU process exists, paused
    libvirt.VIR_DOMAIN_SHUTDOWN: POWER_ON,     # still running, shutting down
    libvirt.VIR_DOMAIN_SHUTOFF: POWER_OFF,
    libvirt.VIR_DOMAIN_CRASHED: POWER_ERROR,   # guest crashed, kept for dump
    libvirt.VIR_DOMAIN_PMSUSPENDED: POWER_ON,  # guest suspended to RAM (S3)
}


def definition_macs(dom):
    """MAC addresses of a ``virDomain``'s persistent definition.

    The one source of a domain's MACs, for finding a node's domain and for
    checking it: the definition is what the operator gave the machine, and
    it is what the next start uses.
    """
    return domain_xml.mac_addresses(dom.XMLDesc(_INACTIVE_XML))


# Health of a domain from its state and the reason libvirt gives for it.
HEALTH_OK = 'ok'
HEALTH_WARNING = 'warning'
HEALTH_CRITICAL = 'critical'
_HEALTH_BY_STATE_REASON = {
    # The guest crashed and is kept for a dump.
    (libvirt.VIR_DOMAIN_CRASHED, None): HEALTH_CRITICAL,
    # Paused by QEMU because a disk failed.
    (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_IOERROR):
        HEALTH_CRITICAL,
    # Paused by the watchdog device: the guest stopped answering it.
    (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_WATCHDOG):
        HEALTH_WARNING,
    # Off after the guest crashed, or after a start that failed.
    (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_CRASHED):
        HEALTH_WARNING,
    (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_FAILED):
        HEALTH_WARNING,
}

# The firmware QEMU reports as the system manufacturer when the domain
# declares none (SMBIOS type 1).
_QEMU_MANUFACTURER = 'QEMU'


def health_of(state, reason):
    """The health a libvirt state and its reason mean; None if unknown.

    :returns: :data:`HEALTH_OK`, ``_WARNING``, ``_CRITICAL`` or None.
    """
    if state == libvirt.VIR_DOMAIN_NOSTATE:
        return None
    return _HEALTH_BY_STATE_REASON.get(
        (state, reason), _HEALTH_BY_STATE_REASON.get((state, None),
                                                     HEALTH_OK))


class _KeyedLocks:
    """One lock per key, forgotten when nobody holds a reference."""

    def __init__(self):
        self._guard = threading.Lock()
        self._locks = weakref.WeakValueDictionary()

    def get(self, key):
        with self._guard:
            lock = self._locks.get(key)
            if lock is None:
                lock = self._locks[key] = _Lock()
            return lock


class _Lock:
    # threading.Lock objects cannot be weakly referenced; this wrapper can.
    def __init__(self):
        self._lock = threading.Lock()

    def __enter__(self):
        self._lock.acquire()
        return self

    def __exit__(self, *exc):
        self._lock.release()


_EDIT_LOCKS = _KeyedLocks()


class Domain:
    """One domain on one hypervisor."""

    def __init__(self, connection, uuid, name=None):
        self.connection = connection
        self.uuid = uuid
        self.name = name or uuid

    def __repr__(self):
        return '<Domain %s (%s) on %s>' % (self.name, self.uuid,
                                           self.connection.params.uri)

    def __str__(self):
        return 'domain %s' % self.name

    def _call(self, func, what):
        return self.connection.call_domain(self.uuid, func, what, self)

    def edit_definition(self, transform, what):
        """Apply ``transform`` (XML in, XML out) to the definition.

        The edit reads the secure XML, defines the result if it differs,
        and holds this domain's edit lock throughout.

        :returns: the XML as defined.
        """
        def run(dom):
            old = dom.XMLDesc(_INACTIVE_SECURE_XML)
            new = transform(old)
            if new != old:
                dom.connect().defineXML(new)
            return new

        with _EDIT_LOCKS.get((self.connection.params.uri, self.uuid)):
            return self._call(run, what)

    def inactive_xml(self):
        """The persistent definition, without its secrets."""
        return self._call(lambda dom: dom.XMLDesc(_INACTIVE_XML),
                          'reading the definition')

    def state(self):
        """The libvirt state code (``libvirt.VIR_DOMAIN_*``)."""
        return self._call(lambda dom: dom.state()[0], 'reading the state')

    def state_and_reason(self):
        """The libvirt state code and libvirt's reason for it (one call)."""
        state, reason = self._call(lambda dom: dom.state(),
                                   'reading the state')
        return state, reason

    def power_state(self):
        """One of :data:`POWER_ON`, :data:`POWER_OFF`, :data:`POWER_ERROR`."""
        return POWER_STATES.get(self.state(), POWER_ERROR)

    def power_on(self):
        """Start the domain; then restore a boot order changed for one boot.

        A crashed domain is destroyed first so that it can start.
        """
        def start(dom):
            if dom.state()[0] == libvirt.VIR_DOMAIN_CRASHED:
                dom.destroy()
            dom.create()
        self._call(start, 'starting')
        self.edit_definition(
            _restore_after_one_time_boot,
            'restoring the boot order after a one-time boot')

    def force_off(self):
        """Stop the domain at once, like pulling the power cord."""
        def destroy(dom):
            if dom.state()[0] != libvirt.VIR_DOMAIN_SHUTOFF:
                dom.destroy()
        self._call(destroy, 'powering off')

    def request_shutdown(self):
        """Ask the guest to shut down (ACPI power button or agent)."""
        self._call(lambda dom: dom.shutdown(), 'requesting a shutdown')

    def nmi(self):
        """Inject a non-maskable interrupt."""
        self._call(lambda dom: dom.injectNMI(0), 'injecting an NMI')

    def health(self):
        """:data:`HEALTH_OK`, ``_WARNING`` or ``_CRITICAL``; None if unknown.

        Read from the domain's state and its reason (one libvirt call).
        """
        return health_of(*self.state_and_reason())

    def vendor(self):
        """The system manufacturer the guest sees.

        The domain's SMBIOS manufacturer when it declares one, else QEMU's
        own for QEMU and KVM domains, else None.
        """
        xml = self.inactive_xml()
        declared = domain_xml.manufacturer(xml)
        if declared:
            return declared
        if domain_xml.domain_type(xml) in ('qemu', 'kvm'):
            return _QEMU_MANUFACTURER
        return None

    def indicator_states(self):
        """Indicator states kept in the metadata; see domain_xml."""
        return domain_xml.indicator_states(self.inactive_xml())

    def set_indicator_state(self, component, indicator, state):
        """Keep an indicator's state in the domain's metadata."""
        self.edit_definition(lambda xml: domain_xml.set_indicator_state(
            xml, component, indicator, state), 'setting an indicator')

    def boot_device(self):
        """The first boot device and whether it stays for later boots.

        :returns: a tuple (libvirt device name or None, persistent).
        """
        xml = self.inactive_xml()
        order = domain_xml.boot_order(xml)
        return (order[0] if order else None,
                domain_xml.pending_restore(xml) is None)

    def set_boot_device(self, device, persistent=True):
        """Boot from ``device`` from now on, or only at the next start.

        A one-time boot device is emulated: the persistent boot order is
        kept in the domain's metadata and restored right after the next
        start.

        :raises: InvalidDomainXML if the domain has no such device.
        """
        def transform(xml):
            restore = domain_xml.pending_restore(xml)
            if persistent:
                restore = None
            elif restore is None:
                restore = domain_xml.boot_snapshot(xml)
            xml = domain_xml.set_first_boot_device(xml, device)
            return domain_xml.set_pending_restore(xml, restore)
        self.edit_definition(transform, 'setting the boot device')

    def device_kinds(self):
        """The bootable device kinds the domain has (libvirt names)."""
        return domain_xml.device_kinds(self.inactive_xml())

    def mac_addresses(self):
        """MAC addresses of the domain's interfaces."""
        return self._call(definition_macs, 'reading the MAC addresses')

    def firmware(self):
        """``domain_xml.FIRMWARE_UEFI`` or ``domain_xml.FIRMWARE_BIOS``."""
        return domain_xml.firmware(self.inactive_xml())

    def set_firmware(self, mode):
        """Switch to a ``domain_xml.FIRMWARE_*``; applies at the next start."""
        self.edit_definition(lambda xml: domain_xml.set_firmware(xml, mode),
                             'setting the firmware')

    def secure_boot(self):
        """Whether UEFI secure boot is enabled."""
        return domain_xml.secure_boot(self.inactive_xml())

    def set_secure_boot(self, enabled):
        """Enable or disable secure boot; applies at the next start.

        :raises: InvalidDomainXML unless the domain boots UEFI.
        """
        self.edit_definition(
            lambda xml: domain_xml.set_secure_boot(xml, enabled),
            'setting secure boot')

    def bios(self):
        """The firmware and the BIOS settings kept in the metadata.

        :returns: a dict with ``firmware`` (``'uefi'`` or ``'bios'``),
            ``secure_boot`` (a boolean) and ``settings`` (a dict of name ->
            value; empty before the first change).
        """
        xml = self.inactive_xml()
        record = domain_xml.bios_record(xml)
        return {'firmware': domain_xml.firmware(xml),
                'secure_boot': domain_xml.secure_boot(xml),
                'settings': record['settings'] if record else {}}

    def configure_bios(self, settings, firmware=None, secure_boot=None):
        """Change BIOS settings, the firmware and secure boot in one edit.

        The firmware and secure boot as they were before the first change
        are recorded, so that :meth:`reset_bios` can go back to them.
        Like any change of the definition, it applies at the next start.

        :param settings: a dict of name -> value to record in the metadata.
        :param firmware: ``'uefi'``, ``'bios'`` or None to leave it.
        :param secure_boot: a boolean, or None to leave it.
        :raises: InvalidDomainXML if secure boot is enabled without UEFI
            firmware chosen by libvirt.
        """
        def transform(xml):
            record = domain_xml.bios_record(xml) or {
                'factory': {'firmware': domain_xml.firmware(xml),
                            'secure_boot': domain_xml.secure_boot(xml)},
                'settings': {}}
            record['settings'].update(settings)
            if firmware is not None:
                xml = domain_xml.set_firmware(xml, firmware)
            if secure_boot is not None and (secure_boot
                                            or domain_xml.secure_boot(xml)):
                xml = domain_xml.set_secure_boot(xml, secure_boot)
            return domain_xml.set_bios_record(xml, record)
        self.edit_definition(transform, 'changing BIOS settings')

    def reset_bios(self):
        """Forget the BIOS settings; restore the firmware and secure boot.

        Without a record of changes the domain is left as it is.

        :raises: InvalidDomainXML if the recorded secure boot state cannot
            be restored.
        """
        def transform(xml):
            record = domain_xml.bios_record(xml)
            if record is None:
                return xml
            factory = record['factory']
            xml = domain_xml.set_firmware(xml, factory['firmware'])
            if factory['secure_boot'] != domain_xml.secure_boot(xml):
                xml = domain_xml.set_secure_boot(xml, factory['secure_boot'])
            return domain_xml.set_bios_record(xml, None)
        self.edit_definition(transform, 'resetting BIOS settings')

    def stats(self):
        """CPU and memory figures.

        :returns: a dict with ``vcpus``, ``cpu_time_ns``, ``max_memory_kib``,
            ``memory_kib`` and, when running, the balloon's ``memory_stats``.
        """
        def read(dom):
            state, max_mem, mem, vcpus, cpu_time = dom.info()
            figures = {'vcpus': vcpus, 'cpu_time_ns': cpu_time,
                       'max_memory_kib': max_mem, 'memory_kib': mem,
                       'memory_stats': {}}
            if POWER_STATES.get(state) == POWER_ON:
                try:
                    figures['memory_stats'] = dom.memoryStats()
                except libvirt.libvirtError as exc:
                    LOG.debug('No memory statistics for %s: %s', self,
                              exc.get_error_message())
            return figures
        return self._call(read, 'reading statistics')

    def hardware(self):
        """What an inspection reports about the machine.

        The first disk's capacity comes from libvirt (``blockInfo``), which
        works for file, block and volume disks on any transport.

        :returns: a dict with ``vcpus``, ``memory_kib``, ``arch``,
            ``firmware``, ``macs``, ``disk`` (target name or None) and
            ``disk_bytes`` (capacity of that disk, or 0).
        """
        def read(dom):
            xml = dom.XMLDesc(_INACTIVE_XML)
            disks = domain_xml.disk_targets(xml)
            _state, max_mem, _mem, vcpus, _cpu = dom.info()
            return {'vcpus': vcpus, 'memory_kib': max_mem,
                    'arch': domain_xml.architecture(xml),
                    'firmware': domain_xml.firmware(xml),
                    'macs': domain_xml.mac_addresses(xml),
                    'disk': disks[0] if disks else None,
                    'disk_bytes': (dom.blockInfo(disks[0])[0]
                                   if disks else 0)}
        return self._call(read, 'reading the hardware')

    def media(self, device='cdrom'):
        """Removable drives of one kind and what they hold.

        :returns: a dict of target name -> source (a path, or None when
            the drive is empty), in the domain's order.
        """
        xml = self.inactive_xml()
        return {target: domain_xml.disk_source(xml, target)
                for target in domain_xml.disk_targets(xml, device)}

    def change_media(self, target, path):
        """Insert the file ``path`` (on the hypervisor) into a drive, or eject.

        The definition changes, and the running machine too when it runs.

        :param target: the drive's target name (``sda``).
        :param path: the file's path on the hypervisor, or None to eject.
        :raises: InvalidDomainXML if the domain has no such drive.
        """
        def run(dom):
            device = domain_xml.media_device(dom.XMLDesc(_INACTIVE_SECURE_XML),
                                             target, path)
            flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
            if dom.isActive():
                flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
            dom.updateDeviceFlags(device, flags)

        with _EDIT_LOCKS.get((self.connection.params.uri, self.uuid)):
            self._call(run, 'changing the medium in %s' % target)


def _restore_after_one_time_boot(xml):
    snapshot = domain_xml.pending_restore(xml)
    if snapshot is None:
        return xml
    xml = domain_xml.set_pending_restore(xml, None)
    return domain_xml.restore_boot(xml, snapshot)
