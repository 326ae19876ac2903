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

"""BIOS interface ``libvirt``: settings of a domain, with a registry.

A domain has no BIOS setup screen; these settings are the domain's own:

* ``BootMode`` and ``SecureBoot`` are the domain's firmware (``<os
  firmware='efi'>`` or SeaBIOS) and UEFI secure boot, changed the way the
  management interface changes them;
* ``SystemUUID`` is the domain's UUID (read-only);
* the other settings are records in the domain's metadata, which the guest
  does not see; they let Ironic's BIOS workflows run on virtual machines.

Changes are written to the domain's persistent definition in one edit and
take effect at its next start; a running domain is not restarted (see
``reset_required`` in :data:`REGISTRY`). Since everything lives in the
domain, every conductor sees the same settings. The firmware and secure
boot state before the first change are recorded there too, and a factory
reset returns to them.

The steps act on the domain directly, so they need no ramdisk and work
with ``disable_ramdisk``.
"""

import dataclasses

from ironic.common import exception
from ironic.common.i18n import _
from ironic.drivers import base
from ironic import objects
from oslo_log import log

from ironic_libvirt.drivers import driver_info
from ironic_libvirt.drivers import resolution
from ironic_libvirt.virt import domain_xml

LOG = log.getLogger(__name__)

ENUMERATION = 'Enumeration'
INTEGER = 'Integer'
STRING = 'String'
BOOLEAN = 'Boolean'

BOOT_MODE = 'BootMode'
SECURE_BOOT = 'SecureBoot'
SYSTEM_UUID = 'SystemUUID'
# BootMode values <-> the core's firmware names.
BOOT_MODES = {'Bios': domain_xml.FIRMWARE_BIOS,
              'Uefi': domain_xml.FIRMWARE_UEFI}
ENABLED, DISABLED = 'Enabled', 'Disabled'


@dataclasses.dataclass(frozen=True)
class Setting:
    """One entry of the registry, with Ironic's registry fields."""

    name: str
    attribute_type: str
    description: str
    default: str = None
    allowable_values: tuple = None
    lower_bound: int = None
    upper_bound: int = None
    min_length: int = None
    max_length: int = None
    read_only: bool = False
    reset_required: bool = False
    unique: bool = False

    def registry(self):
        """Ironic's registry fields (``objects.BIOSSetting``) as a dict."""
        fields = {f: getattr(self, f)
                  for f in objects.BIOSSetting.registry_fields}
        if self.allowable_values is not None:
            fields['allowable_values'] = list(self.allowable_values)
        return fields


REGISTRY = (
    Setting(BOOT_MODE, ENUMERATION,
            _('Firmware of the domain: SeaBIOS or UEFI (OVMF).'),
            allowable_values=tuple(BOOT_MODES), reset_required=True),
    Setting(SECURE_BOOT, ENUMERATION,
            _('UEFI secure boot; Enabled needs BootMode Uefi.'),
            allowable_values=(DISABLED, ENABLED), reset_required=True),
    Setting(SYSTEM_UUID, STRING, _('UUID of the domain.'),
            read_only=True, unique=True),
    Setting('ProcTurboMode', ENUMERATION,
            _('Processor turbo mode (recorded only).'), default=ENABLED,
            allowable_values=(ENABLED, DISABLED)),
    Setting('ProcHyperThreading', ENUMERATION,
            _('Processor hyper-threading (recorded only).'),
            default=ENABLED, allowable_values=(ENABLED, DISABLED)),
    Setting('NumaEnabled', BOOLEAN, _('NUMA (recorded only).'),
            default='true', allowable_values=('true', 'false')),
    Setting('PowerOnDelay', INTEGER,
            _('Seconds to wait at power-on (recorded only).'), default='0',
            lower_bound=0, upper_bound=600),
    Setting('AssetTag', STRING, _('Asset tag (recorded only).'),
            default='', min_length=0, max_length=32),
)
SETTINGS = {s.name: s for s in REGISTRY}

_APPLY_CONFIGURATION_ARGSINFO = {
    'settings': {
        'description': _('A list of BIOS settings to apply, each a dict '
                         'with "name" and "value".'),
        'required': True,
    },
}


def _invalid(node, message, **values):
    return exception.InvalidParameterValue(
        (_('Node %(node)s: ') + message) % dict(values, node=node.uuid))


def _check_value(node, setting, value):
    """The value as stored (a string), if the registry allows it.

    :raises: InvalidParameterValue naming the node, the setting and what
        is allowed.
    """
    name = setting.name
    if setting.read_only:
        raise _invalid(node, _('BIOS setting %(name)s is read-only.'),
                       name=name)
    if setting.attribute_type == BOOLEAN:
        if isinstance(value, bool):
            value = 'true' if value else 'false'
        elif isinstance(value, str):
            value = value.lower()
    if setting.attribute_type == INTEGER:
        number = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str):
            try:
                number = int(value)
            except ValueError:
                pass
        if (number is None or number < setting.lower_bound
                or number > setting.upper_bound):
            raise _invalid(
                node, _('BIOS setting %(name)s cannot be %(value)r; allowed '
                        'values: integers from %(low)d to %(high)d.'),
                name=name, value=value, low=setting.lower_bound,
                high=setting.upper_bound)
        return str(number)
    if not isinstance(value, str):
        raise _invalid(node, _('BIOS setting %(name)s cannot be %(value)r; '
                               'it takes a string.'),
                       name=name, value=value)
    if (setting.allowable_values is not None
            and value not in setting.allowable_values):
        raise _invalid(node, _('BIOS setting %(name)s cannot be %(value)r; '
                               'allowed values: %(allowed)s.'),
                       name=name, value=value,
                       allowed=', '.join(setting.allowable_values))
    if setting.max_length is not None and not (
            setting.min_length <= len(value) <= setting.max_length):
        raise _invalid(node, _('BIOS setting %(name)s cannot be %(value)r; '
                               'allowed values: strings of %(low)d to '
                               '%(high)d characters.'),
                       name=name, value=value, low=setting.min_length,
                       high=setting.max_length)
    return value


def parse_settings(node, settings):
    """Check requested settings against the registry.

    :param settings: a list of dicts with ``name`` and ``value``.
    :returns: a dict of name -> value as stored; later entries of the same
        name win.
    :raises: InvalidParameterValue on a malformed list, an unknown or
        read-only setting, a value the registry does not allow, or
        SecureBoot Enabled with BootMode Bios.
    """
    if not isinstance(settings, list) or not all(
            isinstance(s, dict) and 'name' in s and 'value' in s
            for s in settings):
        raise _invalid(node, _('BIOS settings must be a list of '
                               '{"name": NAME, "value": VALUE}, not '
                               '%(settings)r.'), settings=settings)
    values = {}
    for item in settings:
        setting = SETTINGS.get(item['name'])
        if setting is None:
            raise _invalid(node, _('unknown BIOS setting %(name)r; known '
                                   'settings: %(known)s.'),
                           name=item['name'], known=', '.join(SETTINGS))
        values[setting.name] = _check_value(node, setting, item['value'])
    if values.get(SECURE_BOOT) == ENABLED and values.get(BOOT_MODE) == 'Bios':
        raise _invalid(node, _('BIOS setting SecureBoot Enabled needs '
                               'BootMode Uefi, not Bios.'))
    return values


class LibvirtBIOS(driver_info.DriverInfoMixin, base.BIOSInterface):
    """BIOS settings of a libvirt domain."""

    def cache_bios_settings(self, task):
        """Store the domain's BIOS settings, with the registry, in Ironic.

        :param task: a TaskManager instance containing the node to act on.
        :raises: InvalidParameterValue, TemporaryFailure, DriverOperationError
        """
        state = resolution.with_domain(
            task, 'reading BIOS settings',
            lambda d: dict(d.bios(), uuid=d.uuid))
        values = {BOOT_MODE: next(k for k, v in BOOT_MODES.items()
                                  if v == state['firmware']),
                  SECURE_BOOT: ENABLED if state['secure_boot'] else DISABLED,
                  SYSTEM_UUID: state['uuid']}
        settings = []
        for setting in REGISTRY:
            value = values.get(setting.name)
            if value is None:
                value = state['settings'].get(setting.name, setting.default)
            settings.append(dict(setting.registry(), name=setting.name,
                                 value=value))

        node_id = task.node.id
        create, update, delete, _unchanged = (
            objects.BIOSSettingList.sync_node_setting(
                task.context, node_id, settings))
        if create:
            objects.BIOSSettingList.create(task.context, node_id, create)
        if update:
            objects.BIOSSettingList.save(task.context, node_id, update)
        if delete:
            objects.BIOSSettingList.delete(task.context, node_id,
                                           [d['name'] for d in delete])

    @base.service_step(priority=0, argsinfo=_APPLY_CONFIGURATION_ARGSINFO,
                       requires_ramdisk=False)
    @base.clean_step(priority=0, argsinfo=_APPLY_CONFIGURATION_ARGSINFO,
                     requires_ramdisk=False)
    @base.deploy_step(priority=0, argsinfo=_APPLY_CONFIGURATION_ARGSINFO)
    @base.cache_bios_settings
    def apply_configuration(self, task, settings):
        """Apply BIOS settings to the domain's definition.

        All settings are checked before anything changes; they are written
        in one edit and take effect at the domain's next start.

        :param task: a TaskManager instance containing the node to act on.
        :param settings: a list of dicts with ``name`` and ``value``.
        :raises: InvalidParameterValue on a setting or value the registry
            does not allow, or secure boot on a domain whose UEFI firmware
            is not chosen by libvirt.
        :raises: InvalidParameterValue, TemporaryFailure, DriverOperationError
        """
        values = parse_settings(task.node, settings)
        boot_mode = values.pop(BOOT_MODE, None)
        secure_boot = values.pop(SECURE_BOOT, None)
        LOG.info('Node %(node)s: applying BIOS settings %(settings)s',
                 {'node': task.node.uuid,
                  'settings': ', '.join('%s=%s' % (s['name'], s['value'])
                                        for s in settings)})
        resolution.with_domain(
            task, 'applying BIOS settings',
            lambda d: d.configure_bios(
                values,
                firmware=BOOT_MODES[boot_mode] if boot_mode else None,
                secure_boot=(None if secure_boot is None
                             else secure_boot == ENABLED)))

    @base.service_step(priority=0, requires_ramdisk=False)
    @base.clean_step(priority=0, requires_ramdisk=False)
    @base.deploy_step(priority=0)
    @base.cache_bios_settings
    def factory_reset(self, task):
        """Return to the defaults and to the firmware before any change.

        :param task: a TaskManager instance containing the node to act on.
        :raises: InvalidParameterValue, TemporaryFailure, DriverOperationError
        """
        LOG.info('Node %s: resetting BIOS settings to the factory defaults',
                 task.node.uuid)
        resolution.with_domain(task, 'resetting BIOS settings',
                               lambda d: d.reset_bios())
