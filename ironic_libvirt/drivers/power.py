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

"""Power interface ``libvirt``.

Power state mapping (libvirt domain state -> Ironic power state):

============================  =============  ===============================
libvirt state                 Ironic         why
============================  =============  ===============================
RUNNING                       power on
BLOCKED                       power on       running, waiting on a resource
PAUSED                        power on       the QEMU process still exists
SHUTDOWN                      power on       still running while shutting down
PMSUSPENDED                   power on       guest suspended to RAM (S3)
SHUTOFF                       power off
CRASHED                       error          kept for a dump; power on
                                             destroys it first
NOSTATE, any other            error
============================  =============  ===============================

Reboot is a cold cycle (force off, then start) so that pending definition
changes (boot device, boot mode) apply. Soft power off and soft reboot ask
the guest to shut down and wait up to the timeout Ironic gives; on timeout
they raise ``PowerStateFailure`` and never force the power off.
"""

from ironic.common import exception
from ironic.common import states
from ironic.conductor import task_manager
from ironic.conductor import utils as cond_utils
from ironic.drivers import base
from oslo_log import log

from ironic_libvirt.drivers import driver_info
from ironic_libvirt.drivers import exception as driver_exception
from ironic_libvirt.drivers import resolution
from ironic_libvirt.virt import domain as virt_domain

LOG = log.getLogger(__name__)

POWER_STATE_MAP = {
    virt_domain.POWER_ON: states.POWER_ON,
    virt_domain.POWER_OFF: states.POWER_OFF,
    virt_domain.POWER_ERROR: states.ERROR,
}


def _wait_for(task, power_state, timeout):
    # create() and destroy() return once done, so the state is usually
    # reached already; only a guest shutdown takes time.
    if task.driver.power.get_power_state(task) != power_state:
        cond_utils.node_wait_for_power_state(task, power_state,
                                             timeout=timeout)


class LibvirtPower(driver_info.DriverInfoMixin, base.PowerInterface):
    """Power a libvirt domain on and off."""

    def get_power_state(self, task):
        """Return the power state of the node's domain.

        :param task: a TaskManager instance containing the node to act on.
        :returns: POWER_ON, POWER_OFF or ERROR.
        :raises: InvalidParameterValue, MissingParameterValue
        :raises: InvalidParameterValue, TemporaryFailure, DriverOperationError
        """
        state, reason = resolution.RESOLVER.hand_on(
            task, resolution.STATE_READING,
            resolution.with_domain(task, 'reading the power state',
                                   lambda domain: domain.state_and_reason()))
        return POWER_STATE_MAP[virt_domain.POWER_STATES.get(
            state, virt_domain.POWER_ERROR)]

    @task_manager.require_exclusive_lock
    def set_power_state(self, task, power_state, timeout=None):
        """Set the power state of the node's domain.

        :param task: a TaskManager instance containing the node to act on.
        :param power_state: one of :data:`SUPPORTED_POWER_STATES`.
        :param timeout: seconds to wait for the state, or None for
            ``[conductor] power_state_change_timeout``.
        :raises: InvalidParameterValue on an unsupported power state.
        :raises: PowerStateFailure if the state is not reached in time.
        :raises: InvalidParameterValue, TemporaryFailure, DriverOperationError
        """
        transition = driver_exception.supported(
            self._TRANSITIONS, power_state, task.node.uuid, 'power state')
        transition(self, task, timeout)

    def _power_on(self, task, timeout):
        resolution.with_domain(task, 'power on', lambda d: d.power_on())
        _wait_for(task, states.POWER_ON, timeout)

    def _power_off(self, task, timeout):
        resolution.with_domain(task, 'power off', lambda d: d.force_off())
        _wait_for(task, states.POWER_OFF, timeout)

    def _soft_reboot(self, task, timeout):
        self._soft_power_off(task, timeout)
        self._power_on(task, timeout)

    def _soft_power_off(self, task, timeout):
        if self.get_power_state(task) == states.POWER_OFF:
            return
        resolution.with_domain(task, 'soft power off',
                               lambda d: d.request_shutdown())
        try:
            _wait_for(task, states.POWER_OFF, timeout)
        except exception.PowerStateFailure:
            LOG.error('Node %(node)s: the guest did not shut down after an '
                      'ACPI request within %(timeout)s seconds; it was left '
                      'running. Power it off (hard) if it is hung.',
                      {'node': task.node.uuid, 'timeout': timeout})
            raise

    @task_manager.require_exclusive_lock
    def reboot(self, task, timeout=None):
        """Cold-cycle the node's domain: force it off, then start it.

        :param task: a TaskManager instance containing the node to act on.
        :param timeout: seconds to wait for power on.
        :raises: PowerStateFailure if the domain does not come up in time.
        :raises: InvalidParameterValue, TemporaryFailure, DriverOperationError
        """
        def cycle(domain):
            domain.force_off()
            domain.power_on()
        resolution.with_domain(task, 'reboot', cycle)
        _wait_for(task, states.POWER_ON, timeout)

    def get_supported_power_states(self, task):
        """Return the power states the interface supports.

        :param task: a TaskManager instance containing the node to act on.
        :returns: a list of power states.
        """
        return list(SUPPORTED_POWER_STATES)

    # Ironic's target power state -> how this interface reaches it.
    _TRANSITIONS = {
        states.POWER_ON: _power_on,
        states.POWER_OFF: _power_off,
        states.REBOOT: reboot,
        states.SOFT_REBOOT: _soft_reboot,
        states.SOFT_POWER_OFF: _soft_power_off,
    }


SUPPORTED_POWER_STATES = list(LibvirtPower._TRANSITIONS)
