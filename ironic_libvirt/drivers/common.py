"""What the libvirt interfaces share: driver_info, the domain, errors.

:func:`parse_driver_info` reads and checks a node's ``driver_info`` without
contacting the hypervisor. :func:`with_domain` finds the node's domain and
runs an action on it, translating the core's errors into Ironic exceptions
that name the node and the fix.
"""

import os
import weakref

from ironic.common import exception
from ironic.common.i18n import _
from oslo_config import cfg
from oslo_log import log

from ironic_libvirt import conf  # noqa: F401 (registers [libvirt])
from ironic_libvirt.virt import connection as virt_connection
from ironic_libvirt.virt import domain as virt_domain
from ironic_libvirt.virt import errors
from ironic_libvirt.virt import locator as virt_locator

CONF = cfg.CONF
LOG = log.getLogger(__name__)

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

# driver_internal_info key remembering how the domain was resolved.
RESOLVED_KEY = 'libvirt_domain_resolved'

# What to check when the hypervisor refuses or cannot be reached.
AUTH_FIX = _('Check driver_info sasl_username and sasl_password.')
CONNECTION_FIX = _('Check driver_info libvirt_uri, ssh_key_filename and '
                   'tls_pki_path, and that libvirtd runs on that host.')


class LibvirtError(exception.IronicException):
    _msg_fmt = _('Node %(node)s: %(action)s failed: %(error)s')


class LibvirtConnectionError(LibvirtError):
    _msg_fmt = _('Node %(node)s: %(action)s failed: cannot use the '
                 'hypervisor at %(uri)s: %(error)s. %(fix)s')


class LibvirtDomainNotFound(LibvirtError):
    _msg_fmt = _('Node %(node)s: %(action)s failed: %(error)s. %(fix)s')


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
            {'node': node.uuid, 'key': _driver_info_key(exc.parameter),
             'error': exc})
    if key_file:
        _check_readable(node, 'ssh_key_filename', key_file, directory=False)
    if pki_path:
        _check_readable(node, 'tls_pki_path', pki_path, directory=True)
    return DriverInfo(params, domain)


# Parsed driver_info by its values, for the calls Ironic repeats on every
# node (power state sync): parsing and reading the configuration cost more
# than libvirt's own call. validate() always parses afresh.
_PARSED = {}
_PARSED_MAX = 4096
_KEYS = tuple(OPTIONAL_PROPERTIES)


def _parsed_driver_info(node):
    info = node.driver_info or {}
    try:
        key = tuple(info.get(k) for k in _KEYS)
        parsed = _PARSED.get(key)
    except TypeError:  # an unhashable value: parse_driver_info refuses it
        return parse_driver_info(node)
    if parsed is None:
        parsed = parse_driver_info(node)
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[key] = parsed
    return parsed


def _driver_info_key(parameter):
    if parameter in OPTIONAL_PROPERTIES:
        return parameter
    if parameter and parameter != 'libvirt_uri':
        return 'libvirt_uri (query parameter %s)' % parameter
    return 'libvirt_uri'


def port_macs(task):
    """MAC addresses of the node's ports, lower case and sorted."""
    return sorted({p.address.lower() for p in task.ports if p.address})


def _check_identity(task, info):
    if info.domain is None and not port_macs(task):
        raise exception.MissingParameterValue(
            _('Node %s: driver_info has no libvirt_domain and the node has '
              'no ports to find its domain by MAC address. Set '
              'libvirt_domain or create a port.') % task.node.uuid)


def validate(task):
    """Check driver_info and that the domain can be identified.

    Nothing is contacted. A domain remembered for MAC addresses the node's
    ports no longer have is forgotten here: the power state sync skips
    reading ports, and Ironic validates before every action it is asked
    for.

    :raises: InvalidParameterValue, MissingParameterValue
    """
    info = parse_driver_info(task.node)
    _check_identity(task, info)
    if info.domain is None:
        remembered = _remembered(task, _resolution_key(info))
        if remembered is not None and remembered['macs'] != port_macs(task):
            _forget(task)


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


_CACHE = None
_LOCATOR = virt_locator.DomainLocator()
# node UUID -> what RESOLVED_KEY holds, or None to ignore a stale record.
_RESOLVED = {}
# exclusive task -> UUID of the domain checked to have the node's MACs.
_CHECKED = weakref.WeakKeyDictionary()


def reset_process_state():
    """Forget what the driver keeps in this process, as a restart would.

    Connections are closed and the cache is dropped without making a new
    one, so the next use builds it from the configuration of that moment.
    For tests and the benchmark.
    """
    global _CACHE
    cache, _CACHE = _CACHE, None
    if cache is not None:
        cache.close_all()
    _RESOLVED.clear()
    _PARSED.clear()
    _LOCATOR.reset()


def connection_cache():
    """The process-wide connection cache, configured from [libvirt]."""
    global _CACHE
    if _CACHE is None:
        _CACHE = virt_connection.ConnectionCache(
            size=CONF.libvirt.connection_cache_size,
            settings=virt_connection.ConnectionSettings(
                keepalive_interval=CONF.libvirt.keepalive_interval,
                keepalive_count=CONF.libvirt.keepalive_count,
                open_timeout=CONF.libvirt.open_timeout))
    return _CACHE


def _resolution_key(info):
    return [info.params.uri, info.domain]


def _remembered(task, key):
    """The remembered resolution if it was made for ``key``, else None.

    :returns: a dict with ``key``, ``uuid``, ``name`` and ``macs`` (the
        port MACs it was found by, or None).
    """
    node = task.node
    try:
        entry = _RESOLVED[node.uuid]
    except KeyError:
        entry = node.driver_internal_info.get(RESOLVED_KEY)
    if entry is not None and entry.get('key') == key:
        return entry
    return None


def _remember(task, key, domain, macs):
    entry = {'key': key, 'uuid': domain.uuid, 'name': domain.name,
             'macs': macs}
    _RESOLVED[task.node.uuid] = entry
    if not task.shared:
        task.node.set_driver_internal_info(RESOLVED_KEY, entry)


def _forget(task):
    _RESOLVED[task.node.uuid] = None
    if not task.shared:
        task.node.del_driver_internal_info(RESOLVED_KEY)


def with_domain(task, action, func):
    """Run ``func(domain)`` on the node's domain.

    The domain is resolved once and remembered for the node; if a
    remembered domain has vanished, it is forgotten and resolved again.

    :param task: a TaskManager instance.
    :param action: what is done, for error messages (e.g. "power on").
    :param func: a callable taking a
        :class:`~ironic_libvirt.virt.domain.Domain`.
    :returns: what ``func`` returns.
    :raises: InvalidParameterValue, MissingParameterValue on bad driver_info.
    :raises: LibvirtConnectionError if the hypervisor cannot be used.
    :raises: LibvirtDomainNotFound if the domain cannot be found.
    :raises: LibvirtError if libvirt fails the action.
    """
    info = _parsed_driver_info(task.node)
    connection = connection_cache().get(info.params)
    key = _resolution_key(info)
    try:
        remembered = _remembered(task, key)
        if remembered is not None:
            domain = virt_domain.Domain(connection, remembered['uuid'],
                                        remembered['name'])
            try:
                if _may_act_on(task, info, domain):
                    return func(domain)
                reason = "no longer has the node's MAC addresses"
            except errors.DomainNotFound:
                reason = 'is gone'
            LOG.info('Node %(node)s: domain %(domain)s %(reason)s; looking '
                     'for the domain again.',
                     {'node': task.node.uuid, 'domain': domain.name,
                      'reason': reason})
            _forget(task)
            _LOCATOR.forget(connection, domain.uuid)
        macs = None if info.domain else port_macs(task)
        domain = _resolve(task, info, connection, macs)
        if not _may_act_on(task, info, domain):
            # The MAC index is older than a change of the domain's NICs.
            _LOCATOR.forget(connection, domain.uuid)
            domain = _resolve(task, info, connection, macs)
        _remember(task, key, domain, macs)
        return func(domain)
    except errors.LibvirtCoreError as exc:
        raise _ironic_error(exc, task.node.uuid, action, info) from exc


def _may_act_on(task, info, domain):
    """Whether a domain found by MAC address still has one of the node's.

    A domain found by MAC is remembered, and the MAC index is built once;
    an operator may since have moved the MAC to another domain. Under an
    exclusive lock, where every change of a domain happens, that is checked
    once per task (one libvirt call). The power state sync, which holds a
    shared lock, trusts the resolution and reads no ports.
    """
    if info.domain is not None or task.shared:
        return True
    if _CHECKED.get(task) == domain.uuid:
        return True
    if set(domain.mac_addresses()) & set(port_macs(task)):
        _CHECKED[task] = domain.uuid
        return True
    return False


def _resolve(task, info, connection, macs):
    if info.domain is not None:
        return _LOCATOR.by_ident(connection, info.domain)
    _check_identity(task, info)
    return _LOCATOR.by_macs(connection, macs)


def _ironic_error(exc, node, action, info):
    """The Ironic exception for one of the core's exceptions."""
    if isinstance(exc, errors.AuthFailed):
        return LibvirtConnectionError(
            node=node, action=action, uri=info.params.uri, error=exc,
            fix=AUTH_FIX)
    if isinstance(exc, errors.ConnectionFailed):
        return LibvirtConnectionError(
            node=node, action=action, uri=info.params.uri, error=exc,
            fix=CONNECTION_FIX)
    if isinstance(exc, errors.AmbiguousDomain):
        return exception.InvalidParameterValue(
            _('Node %(node)s: %(action)s failed: %(error)s. Set driver_info '
              'libvirt_domain to one of them.') %
            {'node': node, 'action': action, 'error': exc})
    if isinstance(exc, errors.DomainNotFound):
        fix = (_('Check driver_info libvirt_domain.') if info.domain else
               _("Check the MAC addresses of the node's ports or set "
                 "driver_info libvirt_domain."))
        return LibvirtDomainNotFound(node=node, action=action, error=exc,
                                     fix=fix)
    if isinstance(exc, errors.InvalidDomainXML):
        return exception.InvalidParameterValue(
            _('Node %(node)s: %(action)s failed: %(error)s.') %
            {'node': node, 'action': action, 'error': exc})
    return LibvirtError(node=node, action=action, error=exc)
