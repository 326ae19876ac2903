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

"""Console interfaces: ``libvirt-socat`` (serial), ``libvirt-graphical`` (VNC).

Ironic's socat machinery listens on a TCP port of the conductor and runs,
for each client, a command of ours. For ``libvirt-socat`` it is
``ironic-libvirt console``, which opens the domain's serial console through
the libvirt connection (``virDomainOpenConsole``), so it works over every
transport, remote ones included. For ``libvirt-graphical`` it is
``ironic-libvirt vnc-relay``, which logs in to the domain's VNC server with
the password set at enable time and offers the session without password to
``ironic-novncproxy`` (which can only talk to such servers).

The command is an argument list built from parsed driver_info: the URI has
passed the URI policy, the domain is given by its resolved UUID, paths must
be free of whitespace, and the SASL password travels in the environment,
never on the command line.
"""

import sys

from ironic.common import exception
from ironic.common.i18n import _
from ironic.common import utils
from ironic.common import vnc as vnc_utils
from ironic.conductor import periodics
from ironic.drivers import base
from ironic.drivers.modules import console_utils
from ironic.drivers.modules import graphical_console
from oslo_config import cfg
from oslo_log import log as logging

from ironic_libvirt.drivers import driver_info
from ironic_libvirt.drivers import resolution
from ironic_libvirt.virt import console
from ironic_libvirt.virt import graphics

CONF = cfg.CONF
LOG = logging.getLogger(__name__)
# Where ironic-novncproxy connects (Ironic's names, in driver_internal_info).
VNC_HOST_KEY = 'vnc_host'
VNC_PORT_KEY = 'vnc_port'
PORT_KEY = 'libvirt_console_port'
ALLOCATED_PORT_KEY = 'allocated_libvirt_console_port'
PORT_PROPERTY = {
    PORT_KEY: _('TCP port on the conductor for the console (socat). '
                'Optional; without it, a port of [console] port_range is '
                'allocated.'),
}


def _port(task):
    node = task.node
    port = (node.driver_info.get(PORT_KEY)
            or node.driver_internal_info.get(ALLOCATED_PORT_KEY))
    return None if port is None else utils.validate_network_port(port,
                                                                 PORT_KEY)


def _release_port(task):
    port = task.node.del_driver_internal_info(ALLOCATED_PORT_KEY)
    if port:
        task.node.save()
        console_utils.release_port(port)


def _start_socat(task, subcommand):
    """Start socat on the node's console port, running ``subcommand``.

    :returns: the port.
    """
    if task.node.driver_internal_info.get(ALLOCATED_PORT_KEY) is not None:
        # A console enabled again gets a new socat; the old one must let go
        # of its port first, or the port would not be free to allocate.
        _stop_socat(task)
    port = _port(task)
    if port is None:
        port = console_utils.acquire_port(host=CONF.console.socat_address)
        task.node.set_driver_internal_info(ALLOCATED_PORT_KEY, port)
        task.node.save()
    args, env = console_command(task, subcommand)
    console_utils.start_socat_console(task.node.uuid, port,
                                      ' '.join(args), env)
    return port


def _stop_socat(task):
    try:
        console_utils.stop_socat_console(task.node.uuid)
    finally:
        _release_port(task)


def console_command(task, subcommand='console'):
    """The command socat runs, and its environment.

    :param subcommand: ``console`` (serial) or ``vnc-relay`` (screen).

    :returns: a tuple (list of arguments, dict of environment variables).
    :raises: InvalidParameterValue if an argument holds whitespace.
    :raises: InvalidParameterValue, TemporaryFailure, DriverOperationError
    """
    info = driver_info.parse_driver_info(task.node)
    uuid = resolution.with_domain(task, 'finding the domain for the console',
                                  lambda d: d.uuid)
    params = info.params
    args = [sys.executable, '-m', 'ironic_libvirt.cmd.main', subcommand,
            '--uri', params.uri, '--domain', uuid]
    env = {}
    for option, value in (('--ssh-key-filename', params.ssh_key_filename),
                          ('--tls-pki-path', params.tls_pki_path),
                          ('--sasl-username', params.sasl_username)):
        if value is not None:
            args += [option, value]
    if params.sasl_username is not None:
        env[console.PASSWORD_ENV] = params.sasl_password
    for arg in args:
        if not arg or any(c.isspace() for c in arg):
            raise exception.InvalidParameterValue(
                _('Node %(node)s: the console cannot use %(arg)r: '
                  'paths and names must not contain whitespace.') %
                {'node': task.node.uuid, 'arg': arg})
    return args, env


class _SocatPortMixin(driver_info.DriverInfoMixin):
    """driver_info and the optional console port, for both consoles."""

    def get_properties(self):
        """Return the properties of the interface.

        :returns: dictionary of <property name>:<property description>.
        """
        return dict(super().get_properties(), **PORT_PROPERTY)

    def validate(self, task):
        """Check driver_info and the console port; nothing is contacted.

        :param task: a TaskManager instance containing the node to act on.
        :raises: InvalidParameterValue on malformed parameter(s).
        :raises: MissingParameterValue on missing parameter(s).
        """
        super().validate(task)
        _port(task)


class LibvirtSocatConsole(_SocatPortMixin, base.ConsoleInterface):
    """The domain's serial console, served by socat on a TCP port."""

    def start_console(self, task):
        """Start socat on the node's console port.

        :param task: a TaskManager instance containing the node to act on.
        :raises: InvalidParameterValue on bad driver_info.
        :raises: NoFreeIPMITerminalPorts if no port can be allocated.
        :raises: ConsoleError, ConsoleSubprocessFailed if socat fails.
        :raises: InvalidParameterValue, TemporaryFailure, DriverOperationError
        """
        _start_socat(task, 'console')

    def stop_console(self, task):
        """Stop socat and release an allocated port.

        :param task: a TaskManager instance containing the node to act on.
        :raises: ConsoleError if socat cannot be stopped.
        """
        _stop_socat(task)

    def get_console(self, task):
        """Return the console's address.

        :param task: a TaskManager instance containing the node to act on.
        :returns: ``{'type': 'socat', 'url': 'tcp://HOST:PORT'}``.
        :raises: InvalidParameterValue if the node has no console port.
        """
        port = _port(task)
        if port is None:
            raise exception.InvalidParameterValue(
                _('Node %s: the console is not started, so it has no '
                  'port.') % task.node.uuid)
        return {'type': 'socat',
                'url': console_utils.get_socat_console_url(port)}


class LibvirtGraphicalConsole(_SocatPortMixin,
                              graphical_console.GraphicalConsole):
    """The domain's screen in a browser, through ironic-novncproxy.

    Enabling gives the domain a VNC server on ``[libvirt]
    vnc_listen_address`` with a new random password, starts the relay
    on a port of ``[console] port_range`` at ``[console] socat_address``
    and creates Ironic's console token. Disabling stops the relay, drops
    the token and expires the password, so that the VNC server accepts
    nobody.
    """

    def get_app_name(self):
        """Ironic's console container app; unused: no container runs."""
        return 'libvirt-graphical'

    def start_console(self, task):
        """Give the domain a VNC server with a new password and relay it.

        :param task: a TaskManager instance containing the node to act on.
        :raises: InvalidParameterValue on bad driver_info.
        :raises: NoFreeIPMITerminalPorts if no port can be allocated.
        :raises: ConsoleError, ConsoleSubprocessFailed if socat fails.
        :raises: InvalidParameterValue, TemporaryFailure, DriverOperationError,
            the latter also when the running domain needs a power cycle to
            get its VNC server.
        """
        node = task.node
        password = graphics.new_password()
        resolution.with_domain(
            task, 'enabling the graphical console',
            lambda d: graphics.enable(d, CONF.libvirt.vnc_listen_address,
                                      password))
        port = _start_socat(task, 'vnc-relay')
        node.set_driver_internal_info(VNC_HOST_KEY,
                                      CONF.console.socat_address)
        node.set_driver_internal_info(VNC_PORT_KEY, port)
        node.console_enabled = True
        vnc_utils.novnc_authorize(node)
        LOG.info('Node %(node)s: graphical console enabled, relayed on '
                 '%(host)s:%(port)s.',
                 {'node': node.uuid, 'host': CONF.console.socat_address,
                  'port': port})

    def stop_console(self, task):
        """Stop the relay, drop the token and expire the VNC password.

        :param task: a TaskManager instance containing the node to act on.
        :raises: ConsoleError if socat cannot be stopped.
        :raises: InvalidParameterValue, TemporaryFailure, DriverOperationError
            if the password cannot be expired.
        """
        node = task.node
        try:
            _stop_socat(task)
        finally:
            node.del_driver_internal_info(VNC_HOST_KEY)
            node.del_driver_internal_info(VNC_PORT_KEY)
            node.console_enabled = False
            vnc_utils.novnc_unauthorize(node)
        resolution.with_domain(task, 'disabling the graphical console',
                               graphics.disable)

    @periodics.node_periodic(
        purpose='checking active graphical console sessions',
        spacing=CONF.vnc.expire_console_session_interval,
        filters={'console_enabled': True},
        predicate_extra_fields=['console_interface', 'driver_internal_info'],
        predicate=lambda n: (
            n.console_interface == 'libvirt-graphical'
            and n.driver_internal_info.get('novnc_secret_token')),
    )
    def _expire_libvirt_console_sessions(self, task, manager, context):
        """Disable consoles whose token has expired ([vnc] token_timeout)."""
        self._expire_console_sessions(task)
