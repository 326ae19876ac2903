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

"""Inspect interface ``libvirt``: properties and ports from the domain.

Out-of-band inspection reads what libvirt knows about the domain:

==================  =========================================================
node property       source
==================  =========================================================
cpus                the domain's vCPUs
memory_mb           its maximum memory
local_gb            capacity of its first disk (``virDomainGetBlockInfo``,
                    for file, block and volume disks), rounded down
cpu_arch            ``<os><type arch=...>``
capabilities        ``boot_mode:uefi`` or ``boot_mode:bios`` (unless set)
==================  =========================================================

One port is created per NIC MAC address that has no port yet. The same
figures are stored as the node's inventory, in the shape the agent uses.
"""

from ironic.common import exception
from ironic.common.i18n import _
from ironic.common import states
from ironic.common import utils
from ironic.drivers import base
from ironic.drivers.modules import inspect_utils
from ironic.drivers import utils as drivers_utils
from oslo_log import log
from oslo_utils import units

from ironic_libvirt.drivers import driver_info
from ironic_libvirt.drivers import management
from ironic_libvirt.drivers import resolution

LOG = log.getLogger(__name__)


def _inventory(hardware, memory_mb):
    inventory = {
        'cpu': {'count': hardware['vcpus'],
                'architecture': hardware['arch'] or ''},
        'memory': {'physical_mb': memory_mb},
        'interfaces': [{'name': 'nic%d' % index, 'mac_address': mac}
                       for index, mac in enumerate(hardware['macs'])],
        'boot': {'current_boot_mode': management.FIRMWARE_TO_BOOT_MODE[
            hardware['firmware']]},
        'disks': [],
    }
    if hardware['disk']:
        inventory['disks'].append({'name': hardware['disk'],
                                   'size': hardware['disk_bytes']})
    if hardware['macs']:
        inventory['boot']['pxe_interface'] = hardware['macs'][0]
    return inventory


class LibvirtInspect(driver_info.DriverInfoMixin, base.InspectInterface):
    """Inspect a libvirt domain without booting it."""

    def inspect_hardware(self, task):
        """Read the domain's hardware into the node; create missing ports.

        :param task: a TaskManager instance containing the node to act on.
        :returns: :data:`ironic.common.states.MANAGEABLE`.
        :raises: HardwareInspectionFailure if the domain lacks an essential
            property (an architecture).
        :raises: InvalidParameterValue, TemporaryFailure, DriverOperationError
        """
        node = task.node
        hardware = resolution.with_domain(task, 'inspecting the hardware',
                                          lambda d: d.hardware())
        if not hardware['arch']:
            raise exception.HardwareInspectionFailure(
                error=_('Node %s: the domain names no CPU architecture '
                        '(<os><type arch=...>).') % node.uuid)
        memory_mb = hardware['memory_kib'] // units.Ki
        properties = dict(node.properties,
                          cpus=hardware['vcpus'], memory_mb=memory_mb,
                          local_gb=hardware['disk_bytes'] // units.Gi,
                          cpu_arch=hardware['arch'])
        if not hardware['disk']:
            LOG.warning('Node %s: the domain has no disk; local_gb is 0.',
                        node.uuid)
        if not drivers_utils.get_node_capability(node, 'boot_mode'):
            properties['capabilities'] = utils.get_updated_capabilities(
                properties.get('capabilities', ''),
                {'boot_mode': management.FIRMWARE_TO_BOOT_MODE[
                    hardware['firmware']]})
        node.properties = properties
        node.save()
        inspect_utils.store_inspection_data(
            node, _inventory(hardware, memory_mb), {}, task.context)
        inspect_utils.create_ports_if_not_exist(task, hardware['macs'])
        LOG.info('Node %(node)s inspected: %(properties)s',
                 {'node': node.uuid, 'properties': properties})
        return states.MANAGEABLE
