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

"""Hardware types: ``libvirt`` and the historic driver names.

Ironic removed classic drivers in Rocky and the iSCSI deploy in Xena. The
historic names keep loading as hardware types so that node records and
configurations that carry them go on working:

* ``fake_libvirt_fake``: fake boot and deploy, libvirt power and management.
* ``pxe_libvirt_agent``: PXE/iPXE boot, the agent's ``direct`` deploy.
* ``pxe_libvirt_iscsi``: the same as ``pxe_libvirt_agent``; the iSCSI deploy
  it was named after no longer exists, which is logged once when it loads.
"""

from ironic.drivers import generic
from ironic.drivers.modules import agent
from ironic.drivers.modules import fake
from ironic.drivers.modules import ipxe
from ironic.drivers.modules import noop_mgmt
from ironic.drivers.modules import pxe
from oslo_log import log

from ironic_libvirt.drivers import bios
from ironic_libvirt.drivers import boot
from ironic_libvirt.drivers import console
from ironic_libvirt.drivers import inspect
from ironic_libvirt.drivers import management
from ironic_libvirt.drivers import power

LOG = log.getLogger(__name__)


class LibvirtHardware(generic.GenericHardware):
    """libvirt domains as bare metal machines."""

    @property
    def supported_boot_interfaces(self):
        """List of supported boot interfaces."""
        return (super().supported_boot_interfaces
                + [boot.LibvirtVirtualMediaBoot])

    @property
    def supported_bios_interfaces(self):
        """List of supported bios interfaces."""
        return [bios.LibvirtBIOS] + super().supported_bios_interfaces

    @property
    def supported_management_interfaces(self):
        """List of supported management interfaces."""
        return [management.LibvirtManagement, noop_mgmt.NoopManagement]

    @property
    def supported_power_interfaces(self):
        """List of supported power interfaces."""
        return [power.LibvirtPower]

    @property
    def supported_inspect_interfaces(self):
        """List of supported inspect interfaces."""
        return [inspect.LibvirtInspect] + super().supported_inspect_interfaces

    @property
    def supported_console_interfaces(self):
        """List of supported console interfaces."""
        return ([console.LibvirtSocatConsole,
                 console.LibvirtGraphicalConsole]
                + super().supported_console_interfaces)


class PXELibvirtAgentHardware(LibvirtHardware):
    """The historic ``pxe_libvirt_agent``: PXE boot, direct deploy."""

    @property
    def supported_boot_interfaces(self):
        """List of supported boot interfaces."""
        return [pxe.PXEBoot, ipxe.iPXEBoot]

    @property
    def supported_deploy_interfaces(self):
        """List of supported deploy interfaces."""
        return [agent.AgentDeploy]


class PXELibvirtISCSIHardware(PXELibvirtAgentHardware):
    """The historic ``pxe_libvirt_iscsi``, deploying with ``direct``."""

    def __init__(self):
        super().__init__()
        LOG.warning('Hardware type pxe_libvirt_iscsi: Ironic no longer has '
                    'an iSCSI deploy (removed in Xena); nodes of this type '
                    'deploy with the direct deploy interface. Consider '
                    'moving them to hardware type libvirt.')


class FakeLibvirtFakeHardware(LibvirtHardware):
    """The historic ``fake_libvirt_fake``: fake boot and deploy."""

    @property
    def supported_boot_interfaces(self):
        """List of supported boot interfaces."""
        return [fake.FakeBoot]

    @property
    def supported_deploy_interfaces(self):
        """List of supported deploy interfaces."""
        return [fake.FakeDeploy]
