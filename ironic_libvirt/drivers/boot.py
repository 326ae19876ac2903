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

"""Boot interface ``libvirt-vmedia``: deploy and boot without PXE.

The structure follows Ironic's ``redfish-virtual-media`` boot interface,
with the conductor playing the BMC's part:

1. Ironic's :mod:`~ironic.drivers.modules.image_utils` builds a bootable
   ISO out of the agent's kernel and ramdisk (and, for UEFI, the EFI
   boot loader image ``bootloader``), or takes a pre-built ``deploy_iso``,
   and publishes it on the conductor's web server (``[deploy] http_root``
   served at ``[deploy] http_url``, or ``external_http_url``).
2. The management interface ``libvirt`` downloads that URL on the
   conductor, uploads it into a storage volume on the hypervisor through
   the libvirt connection and puts it into the domain's first CD-ROM
   drive (:meth:`LibvirtManagement.attach_virtual_media
   <ironic_libvirt.drivers.management.LibvirtManagement.attach_virtual_media>`).
3. The domain boots from ``cdrom`` once (the ramdisk) or persistently
   (a ``ramdisk`` deploy's boot ISO); a local boot ejects the medium and
   boots from ``disk``.

Only the CD-ROM is virtual media here: there is no virtual USB stick or
floppy, so configuration reaches the agent through the kernel command line
of the ISO Ironic builds (``config_via_removable`` and configuration
drives of ``ramdisk`` deploys are not supported).
"""

from ironic.common import boot_devices
from ironic.common import exception
from ironic.common.i18n import _
from ironic.common import states
from ironic.conductor import configdrive_utils
from ironic.conductor import utils as manager_utils
from ironic.drivers import base
from ironic.drivers.modules import boot_mode_utils
from ironic.drivers.modules import deploy_utils
from ironic.drivers.modules import image_utils
from ironic.drivers import utils as driver_utils
from oslo_config import cfg
from oslo_log import log

from ironic_libvirt.drivers import management

CONF = cfg.CONF
LOG = log.getLogger(__name__)

REQUIRED_PROPERTIES = {
    'deploy_kernel': _('URL or Glance UUID of the deployment kernel. '
                       'Required if deploy_iso is not set and '
                       '[conductor] deploy_kernel has no default.'),
    'deploy_ramdisk': _('URL or Glance UUID of the ramdisk that is mounted '
                        'at boot time. Required if deploy_iso is not set '
                        'and [conductor] deploy_ramdisk has no default.'),
    'deploy_iso': _('URL or Glance UUID of a pre-built deployment ISO. '
                    'Required if deploy_kernel/deploy_ramdisk are not '
                    'set.'),
}

OPTIONAL_PROPERTIES = {
    'kernel_append_params': driver_utils.KERNEL_APPEND_PARAMS_DESCRIPTION %
    {'option_group': 'pxe'},
    'bootloader': _('URL or Glance UUID of the EFI system partition image '
                    'holding the EFI boot loader, used to build UEFI '
                    'bootable ISOs out of a kernel and a ramdisk. Required '
                    'for UEFI unless deploy_iso, [conductor] bootloader or '
                    '[DEFAULT] esp_image is set.'),
    'external_http_url': _('URL of the web server the ISO is published on '
                           'instead of [deploy] external_http_url and '
                           '[deploy] http_url. The conductor downloads the '
                           'ISO from it. Optional.'),
}

RESCUE_PROPERTIES = {
    'rescue_kernel': _('URL or Glance UUID of the rescue kernel. Required '
                       'for rescue if rescue_iso is not set.'),
    'rescue_ramdisk': _('URL or Glance UUID of the rescue ramdisk. Required '
                        'for rescue if rescue_iso is not set.'),
    'rescue_iso': _('URL or Glance UUID of a pre-built rescue ISO. Required '
                    'for rescue if rescue_kernel/rescue_ramdisk are not '
                    'set.'),
}

COMMON_PROPERTIES = dict(REQUIRED_PROPERTIES)
COMMON_PROPERTIES.update(OPTIONAL_PROPERTIES)
COMMON_PROPERTIES.update(RESCUE_PROPERTIES)

# Subdirectory of [deploy] http_root the ISOs are published in.
IMAGE_SUBDIR = 'libvirt'


def _parse_driver_info(node, mode=None):
    """The ramdisk's images and options from driver_info and [conductor].

    The rules are redfish-virtual-media's: ``<mode>_iso``, else
    ``<mode>_kernel`` and ``<mode>_ramdisk`` (per architecture, then
    ``[conductor]`` defaults), and ``bootloader``.

    :param node: an Ironic node.
    :param mode: ``deploy`` or ``rescue``; by default, the one the node's
        provision state calls for.
    :returns: a dict with the images, ``bootloader``, ``external_http_url``
        and ``can_provide_config`` (whether Ironic builds the ISO and so
        can put parameters on its kernel command line).
    :raises: MissingParameterValue if neither an ISO nor both a kernel and
        a ramdisk are known.
    """
    mode = mode or deploy_utils.rescue_or_deploy_mode(node)
    if not deploy_utils.needs_agent_ramdisk(node, mode=mode):
        # A ramdisk deploy runs no agent; its ISO may still need the
        # boot loader.
        return {'can_provide_config': False,
                'bootloader': driver_utils.get_field(node, 'bootloader',
                                                     use_conf=True)}

    iso_ref = driver_utils.get_agent_iso(node, mode=mode)
    if iso_ref is not None:
        info = {'%s_iso' % mode: iso_ref}
        can_config = False
    else:
        info = driver_utils.get_agent_kernel_ramdisk(node, mode)
        deploy_utils.check_for_missing_params(
            info, _('Error validating the libvirt virtual media boot of '
                    'node %s. Some parameters were missing in its '
                    'driver_info or in the [conductor] defaults')
            % node.uuid)
        can_config = True

    info['bootloader'] = driver_utils.get_field(node, 'bootloader',
                                                use_conf=True)
    info['external_http_url'] = node.driver_info.get('external_http_url')
    info['can_provide_config'] = can_config
    return info


def _check_uefi_bootloader(node, info):
    """UEFI ISOs built out of a kernel and ramdisk need an ESP image."""
    if not info.get('can_provide_config') or info.get('bootloader'):
        return
    if CONF.esp_image:
        return
    if boot_mode_utils.get_boot_mode_for_deploy(node) == 'uefi':
        raise exception.MissingParameterValue(
            _('Node %s boots UEFI: building its ISO needs an EFI system '
              'partition image. Set driver_info bootloader (or '
              '[conductor] bootloader, or [DEFAULT] esp_image), or give a '
              'pre-built ISO in driver_info deploy_iso.') % node.uuid)


def _check_publishing(node):
    if not (node.driver_info.get('external_http_url')
            or CONF.deploy.external_http_url or CONF.deploy.http_url):
        raise exception.MissingParameterValue(
            _('Node %s: the ISO is published on the conductor\'s web '
              'server, but none is configured. Set [deploy] http_url (and '
              'http_root), or driver_info external_http_url.') % node.uuid)


def _parse_deploy_info(node):
    """instance_info's image properties and the driver_info of the ISO."""
    info = {}
    info.update(deploy_utils.get_image_instance_info(node))
    info.update(_parse_driver_info(node))
    return info


class LibvirtVirtualMediaBoot(base.BootInterface):
    """Boot a libvirt domain from an ISO in its CD-ROM drive.

    The ISO is built and published by Ironic's image_utils, then downloaded
    by the conductor and uploaded to the hypervisor by the management
    interface ``libvirt``, which this interface requires.
    """

    capabilities = ['ramdisk_boot']

    @property
    def image_publisher_settings(self):
        """Where Ironic's image_utils publishes the ISOs it builds."""
        return base.ImagePublisherSettings(
            swift_enabled=False,
            image_subdir=IMAGE_SUBDIR,
            file_permission=0o644,
            kernel_params=CONF.pxe.kernel_append_params)

    def get_properties(self):
        """Return the properties of the interface.

        :returns: dictionary of <property name>:<property description>.
        """
        return COMMON_PROPERTIES.copy()

    def _check_management(self, task):
        if not isinstance(task.driver.management,
                          management.LibvirtManagement):
            raise exception.InvalidParameterValue(
                _('Node %(node)s: the libvirt-vmedia boot interface needs '
                  'the libvirt management interface, not %(iface)s.') %
                {'node': task.node.uuid,
                 'iface': task.node.management_interface})

    def _validate_driver_info(self, task, mode=None):
        node = task.node
        self._check_management(task)
        info = _parse_driver_info(node, mode)
        _check_uefi_bootloader(node, info)
        _check_publishing(node)
        return info

    def _validate_instance_info(self, task):
        node = task.node
        # With local boot, the boot interface does not care about the
        # image's kernel and ramdisk.
        if (not task.driver.storage.should_write_image(task)
                or deploy_utils.get_boot_option(node) == 'local'):
            return
        deploy_utils.validate_image_properties(task,
                                               _parse_deploy_info(node))

    def validate(self, task):
        """Check the images of the ramdisk and of the instance.

        :param task: a TaskManager instance containing the node to act on.
        :raises: InvalidParameterValue on malformed parameter(s) or another
            management interface than ``libvirt``.
        :raises: MissingParameterValue on missing parameter(s).
        """
        self._validate_driver_info(task)
        self._validate_instance_info(task)

    def validate_inspection(self, task):
        """Check that the ramdisk can be booted for an inspection.

        :param task: a TaskManager instance containing the node to act on.
        :raises: MissingParameterValue, InvalidParameterValue
        """
        self._validate_driver_info(task)

    def validate_rescue(self, task):
        """Check the rescue ramdisk's images.

        :param task: a TaskManager instance containing the node to act on.
        :raises: MissingParameterValue, InvalidParameterValue
        """
        self._validate_driver_info(task, mode='rescue')

    def _inserted(self, task):
        return any(drive['inserted'] for drive in
                   task.driver.management.get_virtual_media(task))

    def _insert(self, task, iso_url):
        task.driver.management.attach_virtual_media(
            task, boot_devices.CDROM, iso_url)
        LOG.info('Inserted boot ISO %(url)s into the CD-ROM of node '
                 '%(node)s', {'url': iso_url, 'node': task.node.uuid})

    def _eject_all(self, task):
        """Eject the CD-ROM, delete its volume and the published ISO."""
        task.driver.management.detach_virtual_media(
            task, [boot_devices.CDROM])
        image_utils.cleanup_iso_image(task)

    def prepare_ramdisk(self, task, ramdisk_params):
        """Boot the deploy, rescue or inspection ramdisk from an ISO.

        The domain is powered off, the ISO built with ``ramdisk_params`` on
        its kernel command line is inserted, and the domain boots from
        ``cdrom`` once.

        :param task: a TaskManager instance containing the node to act on.
        :param ramdisk_params: the parameters to pass to the ramdisk.
        :raises: MissingParameterValue, InvalidParameterValue
        :raises: ImageCreationFailed if the ISO cannot be built.
        :raises: ImageDownloadFailed, DriverOperationError and the other
            errors of the management interface's virtual media.
        """
        node = task.node
        if not driver_utils.need_prepare_ramdisk(node):
            return

        d_info = self._validate_driver_info(task)

        if manager_utils.is_fast_track(task):
            if self._inserted(task):
                LOG.debug('Fast track operation for node %s, not inserting '
                          'any devices', node.uuid)
                return
            LOG.warning('Fast track is possible for node %s, but no ISO is '
                        'currently inserted! Proceeding with normal '
                        'operation.', node.uuid)

        # Parameters reach the agent only on the command line of an ISO
        # that Ironic builds.
        if d_info.pop('can_provide_config', True):
            manager_utils.add_secret_token(node, pregenerated=True)
            node.save()
            ramdisk_params['ipa-agent-token'] = (
                node.driver_internal_info['agent_secret_token'])

        manager_utils.node_power_action(task, states.POWER_OFF)

        deploy_nic_mac = deploy_utils.get_single_nic_with_vif_port_id(task)
        if deploy_nic_mac is not None:
            ramdisk_params['BOOTIF'] = deploy_nic_mac
        if CONF.debug and 'ipa-debug' not in ramdisk_params:
            ramdisk_params['ipa-debug'] = '1'
        # Mandatory for virtual media deployments.
        ramdisk_params['boot_method'] = 'vmedia'

        # Unlike redfish, the boot mode is settled before the ISO is built:
        # the domain's firmware is known, and the ISO is built for it.
        boot_mode_utils.sync_boot_mode(task)

        mode = deploy_utils.rescue_or_deploy_mode(node)
        iso_url = image_utils.prepare_deploy_iso(task, ramdisk_params, mode,
                                                 d_info)
        self._insert(task, iso_url)
        self._set_boot_device(task, boot_devices.CDROM)
        LOG.debug('Node %(node)s is set to boot from %(device)s once',
                  {'node': node.uuid, 'device': boot_devices.CDROM})

    def clean_up_ramdisk(self, task):
        """Power off, eject the ramdisk's ISO and delete it.

        :param task: a TaskManager instance containing the node to act on.
        """
        if manager_utils.is_fast_track(task):
            LOG.debug('Fast track operation for node %s, not ejecting any '
                      'devices', task.node.uuid)
            return
        LOG.debug('Cleaning up deploy boot for %s', task.node.uuid)
        manager_utils.node_power_action(task, states.POWER_OFF)
        self._eject_all(task)

    def prepare_instance(self, task):
        """Boot the instance: from disk, or from a boot ISO (ramdisk deploy).

        A local boot (or a whole disk image) ejects the ISO and boots from
        ``disk`` persistently. A ``ramdisk`` deploy gets an ISO built out of
        the instance's kernel and ramdisk (or ``instance_info/boot_iso``)
        and boots from ``cdrom`` persistently.

        :param task: a TaskManager instance containing the node to act on.
        :raises: InstanceDeployFailure if a ramdisk deploy asks for a
            configuration drive (there is no virtual USB stick).
        """
        node = task.node
        self._eject_all(task)

        boot_mode_utils.sync_boot_mode(task)
        boot_mode_utils.configure_secure_boot_if_needed(task)

        boot_option = deploy_utils.get_boot_option(node)
        iwdi = node.driver_internal_info.get('is_whole_disk_image')
        if boot_option == 'local' or iwdi:
            self._set_boot_device(task, boot_devices.DISK, persistent=True)
            LOG.debug('Node %s is set to boot from its disk', node.uuid)
            return

        params = {}
        if boot_option != 'ramdisk':
            root_uuid = node.driver_internal_info.get('root_uuid_or_disk_id')
            if not root_uuid and task.driver.storage.should_write_image(task):
                LOG.warning('The UUID of the root partition could not be '
                            'found for node %s. Booting instance from disk '
                            'anyway.', node.uuid)
                self._set_boot_device(task, boot_devices.DISK,
                                      persistent=True)
                return
            params['root_uuid'] = root_uuid
        elif configdrive_utils.get_configdrive_image(node):
            raise exception.InstanceDeployFailure(
                _('Cannot attach a configdrive to node %s: the '
                  'libvirt-vmedia boot interface has no virtual USB '
                  'device.') % node.uuid)

        iso_url = image_utils.prepare_boot_iso(task, _parse_deploy_info(node),
                                               **params)
        self._insert(task, iso_url)
        self._set_boot_device(task, boot_devices.CDROM, persistent=True)
        LOG.debug('Node %(node)s is set to boot from %(device)s',
                  {'node': node.uuid, 'device': boot_devices.CDROM})

    def clean_up_instance(self, task):
        """Eject the instance's ISO and delete it.

        :param task: a TaskManager instance containing the node to act on.
        """
        LOG.debug('Cleaning up instance boot for %s', task.node.uuid)
        self._eject_all(task)
        boot_mode_utils.deconfigure_secure_boot_if_needed(task)

    @classmethod
    def _set_boot_device(cls, task, device, persistent=False):
        manager_utils.node_set_boot_device(task, device, persistent)
