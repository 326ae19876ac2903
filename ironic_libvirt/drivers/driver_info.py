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

"""A node's driver_info: the properties, parsing and validation.

Nothing here contacts a hypervisor or changes the node.
"""

import os
import threading

from ironic.common import exception
from ironic.common.i18n import _
from oslo_config import cfg

from ironic_libvirt import conf  # noqa: F401 (registers [libvirt])
from ironic_libvirt.virt import connection as virt_connection
from ironic_libvirt.virt import errors

CONF = cfg.CONF

OPTIONAL_PROPERTIES = {
    'libvirt_uri': _('libvirt URI of the hypervisor: qemu:///system, '
                     'qemu+ssh://USER@HOST/system, qemu+tcp://HOST/system '
                     '(with SASL), qemu+tls://HOST/system. Only safe query '
                     'parameters are accepted (no_verify, no_tty, sshauth, '
                     'proxy, mode, known_hosts_verify). Optional; defaults '
                     'to [libvirt] default_uri.'),
    'libvirt_domain': _('Name or UUID of the domain. Optional; without it '
                        "the domain is found by the MAC addresses of the "
                        "node's ports."),
    'ssh_key_filename': _('Absolute path, on the conductor, of the private '
                          'key for qemu+ssh URIs. Optional.'),
    'tls_pki_path': _('Absolute path, on the conductor, of the directory '
                      'holding cacert.pem, clientcert.pem and clientkey.pem '
                      'for qemu+tls URIs. Optional; libvirt defaults to '
                      '/etc/pki.'),
    'sasl_username': _('SASL user name for the hypervisor. Optional; '
                       'requires sasl_password.'),
    'sasl_password': _('SASL password for the hypervisor. Optional; '
                       'requires sasl_username.'),
}
COMMON_PROPERTIES = OPTIONAL_PROPERTIES


class DriverInfo:
    """A node's parsed driver_info.

    :ivar params: the
        :class:`~ironic_libvirt.virt.connection.ConnectionParams`.
    :ivar domain: the domain's name or UUID, or None.
    """

    __slots__ = ('params', 'domain')

    def __init__(self, params, domain):
        self.params = params
        self.domain = domain


def _string(node, info, key):
    value = info.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise exception.InvalidParameterValue(
            _('Node %(node)s: driver_info %(key)s must be a non-empty '
              'string.') % {'node': node.uuid, 'key': key})
    return value.strip()


def _check_readable(node, key, path, directory):
    exists = os.path.isdir(path) if directory else os.path.isfile(path)
    if not exists or not os.access(path, os.R_OK):
        raise exception.InvalidParameterValue(
            _('Node %(node)s: driver_info %(key)s: %(path)s is not a '
              'readable %(kind)s on the conductor.') %
            {'node': node.uuid, 'key': key, 'path': path,
             'kind': _('directory') if directory else _('file')})


def _refused_key(parameter):
    """The driver_info key to name for a part the URI policy refused."""
    if parameter in OPTIONAL_PROPERTIES:
        return parameter
    if parameter and parameter != 'libvirt_uri':
        return 'libvirt_uri (query parameter %s)' % parameter
    return 'libvirt_uri'


def parse_driver_info(node):
    """Read and check a node's driver_info; nothing is contacted.

    :param node: an Ironic node.
    :returns: a :class:`DriverInfo`.
    :raises: InvalidParameterValue on a malformed or refused value.
    :raises: MissingParameterValue if one SASL credential lacks the other.
    """
    info = node.driver_info or {}
    uri = _string(node, info, 'libvirt_uri') or CONF.libvirt.default_uri
    domain = _string(node, info, 'libvirt_domain')
    key_file = _string(node, info, 'ssh_key_filename')
    pki_path = _string(node, info, 'tls_pki_path')
    username = _string(node, info, 'sasl_username')
    password = info.get('sasl_password')
    if password is not None and not isinstance(password, str):
        raise exception.InvalidParameterValue(
            _('Node %s: driver_info sasl_password must be a string.')
            % node.uuid)
    if (username is None) != (password is None):
        missing = 'sasl_password' if password is None else 'sasl_username'
        raise exception.MissingParameterValue(
            _('Node %(node)s: driver_info %(key)s is missing; '
              'sasl_username and sasl_password go together.') %
            {'node': node.uuid, 'key': missing})

    params = virt_connection.ConnectionParams(
        uri=uri, ssh_key_filename=key_file, tls_pki_path=pki_path,
        sasl_username=username, sasl_password=password)
    try:
        virt_connection.check_uri(
            params, allow_test_driver=CONF.libvirt.allow_test_driver,
            allowed_path_dirs=CONF.libvirt.allowed_path_dirs)
    except errors.UnsafeURI as exc:
        raise exception.InvalidParameterValue(
            _('Node %(node)s: driver_info %(key)s is refused: %(error)s.') %
            {'node': node.uuid, 'key': _refused_key(exc.parameter),
             'error': exc}) from exc
    if key_file:
        _check_readable(node, 'ssh_key_filename', key_file, directory=False)
    if pki_path:
        _check_readable(node, 'tls_pki_path', pki_path, directory=True)
    return DriverInfo(params, domain)


class ParsedMemo:
    """Parsed driver_info by its values, bounded.

    Ironic repeats some calls on every node (the power state sync), where
    parsing and reading the configuration cost more than libvirt's own
    call. validate() always parses afresh.
    """

    _KEYS = tuple(OPTIONAL_PROPERTIES)

    def __init__(self, size=4096):
        self._size = size
        self._lock = threading.Lock()
        self._parsed = {}

    def get(self, node):
        """The :class:`DriverInfo` of ``node``, parsed once per value.

        :raises: what :func:`parse_driver_info` raises.
        """
        info = node.driver_info or {}
        key = tuple(info.get(k) for k in self._KEYS)
        try:
            parsed = self._parsed.get(key)
        except TypeError:  # an unhashable value: parse_driver_info refuses
            return parse_driver_info(node)
        if parsed is None:
            parsed = parse_driver_info(node)
            with self._lock:
                if len(self._parsed) >= self._size:
                    self._parsed.clear()
                self._parsed[key] = parsed
        return parsed

    def clear(self):
        """Forget every parsed value."""
        with self._lock:
            self._parsed.clear()


def port_macs(task):
    """MAC addresses of the node's ports, lower case and sorted."""
    return sorted({p.address.lower() for p in task.ports if p.address})


def check_identity(task, info):
    """Check that the node's domain can be identified.

    :param task: a TaskManager instance.
    :param info: the node's :class:`DriverInfo`.
    :raises: MissingParameterValue without libvirt_domain and ports.
    """
    if info.domain is None and not port_macs(task):
        raise exception.MissingParameterValue(
            _('Node %s: driver_info has no libvirt_domain and the node has '
              'no ports to find its domain by MAC address. Set '
              'libvirt_domain or create a port.') % task.node.uuid)


def validate(task):
    """Check driver_info and that the domain can be identified.

    Nothing is contacted and the node is not changed.

    :raises: InvalidParameterValue, MissingParameterValue
    """
    check_identity(task, parse_driver_info(task.node))


class DriverInfoMixin:
    """get_properties() and validate() of every libvirt interface."""

    def get_properties(self):
        """Return the properties of the interface.

        :returns: dictionary of <property name>:<property description>.
        """
        return COMMON_PROPERTIES.copy()

    def validate(self, task):
        """Check driver_info without contacting the hypervisor.

        :param task: a TaskManager instance containing the node to act on.
        :raises: InvalidParameterValue on malformed parameter(s).
        :raises: MissingParameterValue on missing parameter(s).
        """
        validate(task)
