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

"""Management interface ``libvirt``: boot device, boot mode, NMI, sensors.

Boot devices map to libvirt's names: pxe -> network, disk -> hd,
cdrom -> cdrom, floppy -> fd. libvirt keeps the boot order in the domain's
definition; a one-time boot device is emulated: the next start boots from
it and the persistent order is restored right after that start. Changes
apply at the next start, which a reboot (a cold cycle) provides.

Virtual media: a CD-ROM image is downloaded on the conductor, uploaded
into a storage volume of ``[libvirt] media_pool`` on the hypervisor through
the libvirt connection (any transport), and put into the domain's first
CD-ROM drive, live when the domain runs. Ejecting deletes the volume.

Indicators: a system LED and a disk LED whose states (off, on, blinking)
are kept in the domain's metadata, so every conductor sees them. Health
comes from the domain's state and libvirt's reason for it (a crashed
guest, a disk I/O error, the watchdog). The vendor is the SMBIOS system
manufacturer the guest sees.
"""

import os
import tempfile

from ironic.common import boot_devices
from ironic.common import boot_modes
from ironic.common import components
from ironic.common import exception
from ironic.common import health_states
from ironic.common.i18n import _
from ironic.common import images
from ironic.common import indicator_states
from ironic.conductor import task_manager
from ironic.drivers import base
from oslo_config import cfg

from ironic_libvirt.drivers import driver_info
from ironic_libvirt.drivers import exception as driver_exception
from ironic_libvirt.drivers import resolution
from ironic_libvirt.virt import domain as virt_domain
from ironic_libvirt.virt import domain_xml
from ironic_libvirt.virt import media

CONF = cfg.CONF

BOOT_DEVICE_TO_LIBVIRT = {
    boot_devices.PXE: 'network',
    boot_devices.DISK: 'hd',
    boot_devices.CDROM: 'cdrom',
    boot_devices.FLOPPY: 'fd',
}
LIBVIRT_TO_BOOT_DEVICE = {v: k for k, v in BOOT_DEVICE_TO_LIBVIRT.items()}
ALWAYS_SUPPORTED_BOOT_DEVICES = [boot_devices.PXE, boot_devices.DISK,
                                 boot_devices.CDROM]
BOOT_MODE_TO_FIRMWARE = {
    boot_modes.LEGACY_BIOS: domain_xml.FIRMWARE_BIOS,
    boot_modes.UEFI: domain_xml.FIRMWARE_UEFI,
}
FIRMWARE_TO_BOOT_MODE = {v: k for k, v in BOOT_MODE_TO_FIRMWARE.items()}
SUPPORTED_BOOT_MODES = list(BOOT_MODE_TO_FIRMWARE)
_LED = {'readonly': False, 'states': [indicator_states.OFF,
                                      indicator_states.ON,
                                      indicator_states.BLINKING]}
# Component -> indicator ID -> its properties, as Ironic's API lists them.
INDICATORS = {
    components.SYSTEM: {'led': _LED},
    components.DISK: {'led': _LED},
}
HEALTH_MAP = {
    virt_domain.HEALTH_OK: health_states.HealthState.OK,
    virt_domain.HEALTH_WARNING: health_states.HealthState.WARNING,
    virt_domain.HEALTH_CRITICAL: health_states.HealthState.CRITICAL,
}
# driver_internal_info key: drive target -> URL of the image inserted.
VMEDIA_KEY = 'libvirt_vmedia'
# Balloon statistics that are not sizes in KiB.
_BALLOON_UNITS = {'last_update': 's', 'major_fault': 'count',
                  'minor_fault': 'count', 'hugetlb_pgalloc': 'count',
                  'hugetlb_pgfail': 'count'}


class LibvirtManagement(driver_info.DriverInfoMixin,
                        base.ManagementInterface):
    """Manage a libvirt domain's boot configuration."""

    def get_supported_boot_devices(self, task):
        """Return the boot devices: pxe, disk, cdrom, and floppy if present.

        :param task: a TaskManager instance containing the node to act on.
        :returns: a list of :mod:`ironic.common.boot_devices` values.
        :raises: InvalidParameterValue, TemporaryFailure, DriverOperationError
        """
        kinds = resolution.with_domain(task, 'listing boot devices',
                                       lambda d: d.device_kinds())
        supported = list(ALWAYS_SUPPORTED_BOOT_DEVICES)
        if 'fd' in kinds:
            supported.append(boot_devices.FLOPPY)
        return supported

    @task_manager.require_exclusive_lock
    def set_boot_device(self, task, device, persistent=False):
        """Set the boot device for the next start, or for every start.

        :param task: a TaskManager instance containing the node to act on.
        :param device: a :mod:`ironic.common.boot_devices` value.
        :param persistent: whether the device stays for later boots.
        :raises: InvalidParameterValue on an unknown device, or one the
            domain does not have.
        :raises: InvalidParameterValue, TemporaryFailure, DriverOperationError
        """
        libvirt_device = driver_exception.supported(
            BOOT_DEVICE_TO_LIBVIRT, device, task.node.uuid, 'boot device')
        resolution.with_domain(
            task, 'setting the boot device to %s' % device,
            lambda d: d.set_boot_device(libvirt_device, persistent))

    def get_boot_device(self, task):
        """Return the first boot device of the node's domain.

        :param task: a TaskManager instance containing the node to act on.
        :returns: a dict with ``boot_device`` (a
            :mod:`ironic.common.boot_devices` value, or None if the domain's
            first device has no Ironic name) and ``persistent``.
        :raises: InvalidParameterValue, TemporaryFailure, DriverOperationError
        """
        device, persistent = resolution.with_domain(
            task, 'reading the boot device', lambda d: d.boot_device())
        return {'boot_device': LIBVIRT_TO_BOOT_DEVICE.get(device),
                'persistent': persistent}

    def get_supported_boot_modes(self, task):
        """Return the boot modes: bios and uefi.

        :param task: a TaskManager instance containing the node to act on.
        :returns: a list of :mod:`ironic.common.boot_modes` values.
        """
        return list(SUPPORTED_BOOT_MODES)

    @task_manager.require_exclusive_lock
    def set_boot_mode(self, task, mode):
        """Switch the domain's firmware; applies at the next start.

        :param task: a TaskManager instance containing the node to act on.
        :param mode: ``bios`` or ``uefi``.
        :raises: InvalidParameterValue on an unsupported mode.
        :raises: InvalidParameterValue, TemporaryFailure, DriverOperationError
        """
        firmware = driver_exception.supported(
            BOOT_MODE_TO_FIRMWARE, mode, task.node.uuid, 'boot mode')
        resolution.with_domain(task, 'setting the boot mode to %s' % mode,
                               lambda d: d.set_firmware(firmware))

    def get_boot_mode(self, task):
        """Return the domain's boot mode.

        :param task: a TaskManager instance containing the node to act on.
        :returns: ``bios`` or ``uefi``.
        :raises: InvalidParameterValue, TemporaryFailure, DriverOperationError
        """
        definition = resolution.RESOLVER.hand_on(
            task, resolution.DEFINITION_READING,
            resolution.with_domain(task, 'reading the boot mode',
                                   lambda d: d.inactive_xml()))
        return FIRMWARE_TO_BOOT_MODE[domain_xml.firmware(definition)]

    def get_secure_boot_state(self, task):
        """Return whether UEFI secure boot is enabled.

        :param task: a TaskManager instance containing the node to act on.
        :returns: a boolean.
        :raises: InvalidParameterValue, TemporaryFailure, DriverOperationError
        """
        definition = resolution.RESOLVER.take(
            task, resolution.DEFINITION_READING)
        if definition is not None:
            return domain_xml.secure_boot(definition)
        return resolution.with_domain(task, 'reading the secure boot state',
                                      lambda d: d.secure_boot())

    @task_manager.require_exclusive_lock
    def set_secure_boot_state(self, task, state):
        """Enable or disable UEFI secure boot; applies at the next start.

        :param task: a TaskManager instance containing the node to act on.
        :param state: a boolean.
        :raises: InvalidParameterValue unless the domain boots UEFI with
            firmware chosen by libvirt.
        :raises: InvalidParameterValue, TemporaryFailure, DriverOperationError
        """
        resolution.with_domain(task, 'setting secure boot',
                               lambda d: d.set_secure_boot(bool(state)))

    @task_manager.require_exclusive_lock
    def inject_nmi(self, task):
        """Inject a non-maskable interrupt into the domain.

        :param task: a TaskManager instance containing the node to act on.
        :raises: InvalidParameterValue, TemporaryFailure, DriverOperationError
        """
        resolution.with_domain(task, 'injecting an NMI', lambda d: d.nmi())

    def get_mac_addresses(self, task):
        """Return the MAC addresses of the domain's interfaces.

        :param task: a TaskManager instance containing the node to act on.
        :returns: a list of MAC addresses.
        :raises: InvalidParameterValue, TemporaryFailure, DriverOperationError
        """
        return resolution.with_domain(task, 'reading MAC addresses',
                                      lambda d: d.mac_addresses())

    def get_sensors_data(self, task):
        """Return CPU and memory figures in Ironic's sensor-data shape.

        :param task: a TaskManager instance containing the node to act on.
        :returns: ``{'CPU': {...}, 'Memory': {...}}``, each sensor a dict
            with ``Sensor Reading`` and ``Units``.
        :raises: FailedToGetSensorData if the figures cannot be read.
        """
        try:
            figures = resolution.with_domain(task, 'reading statistics',
                                             lambda d: d.stats())
        except exception.IronicException as exc:
            raise exception.FailedToGetSensorData(node=task.node.uuid,
                                                  error=exc)

        def sensor(value, units):
            return {'Sensor Reading': str(value), 'Units': units}

        memory = {'max': sensor(figures['max_memory_kib'], 'KiB'),
                  'current': sensor(figures['memory_kib'], 'KiB')}
        for name, value in figures['memory_stats'].items():
            memory['balloon %s' % name] = sensor(
                value, _BALLOON_UNITS.get(name, 'KiB'))
        return {
            'CPU': {'vcpus': sensor(figures['vcpus'], 'count'),
                    'cpu time': sensor(figures['cpu_time_ns'], 'ns')},
            'Memory': memory,
        }

    def get_node_health(self, task):
        """Return the domain's health from its state and libvirt's reason.

        :param task: a TaskManager instance containing the node to act on.
        :returns: a :class:`ironic.common.health_states.HealthState`, or
            None when libvirt reports no state.
        :raises: InvalidParameterValue, TemporaryFailure, DriverOperationError
        """
        reading = resolution.RESOLVER.take(task, resolution.STATE_READING)
        if reading is not None:
            health = virt_domain.health_of(*reading)
        else:
            health = resolution.with_domain(task, 'reading the health',
                                            lambda d: d.health())
        return None if health is None else HEALTH_MAP[health]

    def detect_vendor(self, task):
        """Return the system manufacturer the guest sees.

        :param task: a TaskManager instance containing the node to act on.
        :returns: the domain's SMBIOS manufacturer, ``QEMU`` for a QEMU or
            KVM domain that declares none, or None.
        :raises: InvalidParameterValue, TemporaryFailure, DriverOperationError
        """
        return resolution.with_domain(task, 'detecting the vendor',
                                      lambda d: d.vendor())

    def get_supported_indicators(self, task, component=None):
        """Return the indicators: a system LED and a disk LED.

        :param task: a TaskManager instance containing the node to act on.
        :param component: a :mod:`ironic.common.components` value, or None
            for every component.
        :returns: component -> indicator ID -> ``readonly`` and ``states``.
        """
        return {name: {indicator: dict(props)
                       for indicator, props in indicators.items()}
                for name, indicators in INDICATORS.items()
                if component in (None, name)}

    def _check_indicator(self, task, component, indicator):
        node = task.node.uuid
        indicators = driver_exception.supported(INDICATORS, component, node,
                                                'indicator component')
        return driver_exception.supported(
            indicators, indicator, node,
            'indicator of component %s' % component)

    def set_indicator_state(self, task, component, indicator, state):
        """Set an indicator; its state is kept in the domain's metadata.

        :param task: a TaskManager instance containing the node to act on.
        :param component: a :mod:`ironic.common.components` value.
        :param indicator: an indicator ID of that component.
        :param state: a :mod:`ironic.common.indicator_states` value.
        :raises: InvalidParameterValue on an unknown component, indicator
            or state.
        :raises: InvalidParameterValue, TemporaryFailure, DriverOperationError
        """
        props = self._check_indicator(task, component, indicator)
        driver_exception.supported(dict.fromkeys(props['states']), state,
                                   task.node.uuid, 'indicator state')
        resolution.with_domain(
            task, 'setting indicator %s of %s' % (indicator, component),
            lambda d: d.set_indicator_state(component, indicator, state))

    def get_indicator_state(self, task, component, indicator):
        """Return an indicator's state; off until one is set.

        :param task: a TaskManager instance containing the node to act on.
        :param component: a :mod:`ironic.common.components` value.
        :param indicator: an indicator ID of that component.
        :returns: a :mod:`ironic.common.indicator_states` value.
        :raises: InvalidParameterValue on an unknown component or indicator.
        :raises: InvalidParameterValue, TemporaryFailure, DriverOperationError
        """
        self._check_indicator(task, component, indicator)
        states = resolution.with_domain(task, 'reading indicators',
                                        lambda d: d.indicator_states())
        return states.get((component, indicator), indicator_states.OFF)

    def _check_vmedia_types(self, task, device_types):
        for device_type in device_types:
            if device_type not in boot_devices.VMEDIA_DEVICES:
                raise exception.InvalidParameterValue(
                    _('Node %(node)s: %(type)s is not a virtual media '
                      'device type (%(types)s).') %
                    {'node': task.node.uuid, 'type': device_type,
                     'types': ', '.join(boot_devices.VMEDIA_DEVICES)})
            if device_type != boot_devices.CDROM:
                raise exception.UnsupportedDriverExtension(
                    driver=task.node.driver,
                    extension=_('virtual media of type %s (only cdrom)')
                    % device_type)

    def get_virtual_media(self, task):
        """Return the domain's CD-ROM drives and their media.

        :param task: a TaskManager instance containing the node to act on.
        :returns: a list of dicts with ``media_types`` (``['cdrom']``),
            ``inserted`` and ``image`` (the URL attached, the path on the
            hypervisor of a medium put there otherwise, or None).
        :raises: InvalidParameterValue, TemporaryFailure, DriverOperationError
        """
        drives = resolution.with_domain(task, 'reading virtual media',
                                        media.describe)
        urls = task.node.driver_internal_info.get(VMEDIA_KEY) or {}
        return [{'media_types': [boot_devices.CDROM],
                 'inserted': drive['source'] is not None,
                 'image': (urls.get(drive['target']) if drive['uploaded']
                           else drive['source'])}
                for drive in drives]

    @task_manager.require_exclusive_lock
    def attach_virtual_media(self, task, device_type, image_url):
        """Put an image into the domain's first CD-ROM drive.

        The image is downloaded on the conductor and uploaded to the
        hypervisor through the libvirt connection.

        :param task: a TaskManager instance containing the node to act on.
        :param device_type: :data:`ironic.common.boot_devices.CDROM`.
        :param image_url: URL of the image (any scheme Ironic's image
            services download: http, https, file...).
        :raises: InvalidParameterValue on a device type that is not one of
            virtual media, or a domain without a CD-ROM drive.
        :raises: UnsupportedDriverExtension for disk and floppy.
        :raises: ImageRefValidationFailed, ImageDownloadFailed if the image
            cannot be downloaded.
        :raises: InvalidParameterValue, TemporaryFailure, DriverOperationError
        """
        self._check_vmedia_types(task, [device_type])
        node = task.node
        with tempfile.TemporaryDirectory(dir=CONF.tempdir,
                                         prefix='ironic-libvirt-') as tmp:
            path = os.path.join(tmp, 'image')
            images.fetch(task.context, image_url, path)
            target = resolution.with_domain(
                task, 'attaching virtual media',
                lambda d: media.insert(d, path, CONF.libvirt.media_pool,
                                       CONF.libvirt.media_pool_path))
        node.set_driver_internal_info(VMEDIA_KEY, {target: image_url})
        node.save()

    @task_manager.require_exclusive_lock
    def detach_virtual_media(self, task, device_types=None):
        """Eject the domain's CD-ROM media and delete the uploaded images.

        :param task: a TaskManager instance containing the node to act on.
        :param device_types: device types to detach (only ``cdrom`` is
            supported), or None for all.
        :raises: InvalidParameterValue on a device type that is not one of
            virtual media.
        :raises: UnsupportedDriverExtension for disk and floppy.
        :raises: InvalidParameterValue, TemporaryFailure, DriverOperationError
        """
        self._check_vmedia_types(task, device_types or [])
        resolution.with_domain(
            task, 'detaching virtual media',
            lambda d: media.eject(d, CONF.libvirt.media_pool))
        if task.node.del_driver_internal_info(VMEDIA_KEY) is not None:
            task.node.save()
