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

"""Console interface ``libvirt-socat``: the domain's serial console over TCP.

Ironic's socat machinery listens on a TCP port of the conductor and runs,
for each client, ``ironic-libvirt console``, which opens the domain's
serial console through the libvirt connection (``virDomainOpenConsole``),
so it works over every transport, remote ones included.

The command is an argument list built from parsed driver_info: the URI has
passed the URI policy, the domain is given by its resolved UUID, paths must
be free of whitespace, and the SASL password travels in the environment,
never on the command line.
"""

import sys

from ironic.common import exception
from ironic.common.i18n import _
from ironic.common import utils
from ironic.drivers import base
from ironic.drivers.modules import console_utils
from oslo_config import cfg

from ironic_libvirt.drivers import driver_info
from ironic_libvirt.drivers import resolution
from ironic_libvirt.virt import console

CONF = cfg.CONF
PORT_KEY = 'libvirt_console_port'
ALLOCATED_PORT_KEY = 'allocated_libvirt_console_port'
PORT_PROPERTY = {
    PORT_KEY: _('TCP port on the conductor for the serial console. '
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


def console_command(task):
    """The command socat runs, and its environment.

    :returns: a tuple (list of arguments, dict of environment variables).
    :raises: InvalidParameterValue if an argument holds whitespace.
    :raises: LibvirtConnectionError, LibvirtDomainNotFound, LibvirtError
    """
    info = driver_info.parse_driver_info(task.node)
    uuid = resolution.with_domain(task, 'finding the domain for the console',
                                  lambda d: d.uuid)
    params = info.params
    args = [sys.executable, '-m', 'ironic_libvirt.cmd.main', 'console',
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
                _('Node %(node)s: the serial console cannot use %(arg)r: '
                  'paths and names must not contain whitespace.') %
                {'node': task.node.uuid, 'arg': arg})
    return args, env


class LibvirtSocatConsole(driver_info.DriverInfoMixin,
                          base.ConsoleInterface):
    """The domain's serial console, served by socat on a TCP port."""

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

    def start_console(self, task):
        """Start socat on the node's console port.

        :param task: a TaskManager instance containing the node to act on.
        :raises: InvalidParameterValue on bad driver_info.
        :raises: NoFreeIPMITerminalPorts if no port can be allocated.
        :raises: ConsoleError, ConsoleSubprocessFailed if socat fails.
        :raises: LibvirtConnectionError, LibvirtDomainNotFound, LibvirtError
        """
        _release_port(task)
        port = _port(task)
        if port is None:
            port = console_utils.acquire_port(host=CONF.console.socat_address)
            task.node.set_driver_internal_info(ALLOCATED_PORT_KEY, port)
            task.node.save()
        args, env = console_command(task)
        console_utils.start_socat_console(task.node.uuid, port,
                                          ' '.join(args), env)

    def stop_console(self, task):
        """Stop socat and release an allocated port.

        :param task: a TaskManager instance containing the node to act on.
        :raises: ConsoleError if socat cannot be stopped.
        """
        try:
            console_utils.stop_socat_console(task.node.uuid)
        finally:
            _release_port(task)

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
