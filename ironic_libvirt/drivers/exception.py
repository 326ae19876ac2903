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

"""The Ironic exceptions of the libvirt interfaces.

:func:`from_core` turns an exception of the libvirt core
(:mod:`ironic_libvirt.virt.errors`) into the Ironic exception that names
the node, what failed and the fix.
"""

from ironic.common import exception
from ironic.common.i18n import _

from ironic_libvirt.virt import errors

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


def supported(table, value, node, what):
    """``table[value]`` for a value an Ironic API user chose.

    :param table: the supported values and what each maps to.
    :param node: the node's UUID.
    :param what: what the value is, e.g. "boot mode".
    :raises: InvalidParameterValue naming the node and the supported
        values when ``value`` is not one of them.
    """
    try:
        return table[value]
    except KeyError:
        raise exception.InvalidParameterValue(
            _('Node %(node)s: %(what)s %(value)s is not supported; '
              'supported: %(supported)s.') %
            {'node': node, 'what': what, 'value': value,
             'supported': ', '.join(table)}) from None


def from_core(exc, node, action, info):
    """The Ironic exception for one of the core's exceptions.

    :param exc: a :class:`~ironic_libvirt.virt.errors.LibvirtCoreError`.
    :param node: the node's UUID.
    :param action: what was done, e.g. "power on".
    :param info: the node's
        :class:`~ironic_libvirt.drivers.driver_info.DriverInfo`.
    :returns: an :class:`ironic.common.exception.IronicException`.
    """
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
