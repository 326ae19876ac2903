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

"""Ironic exceptions for the libvirt interfaces' failures.

:func:`from_core` turns an exception of the libvirt core
(:mod:`ironic_libvirt.virt.errors`) into an Ironic exception whose message
names the node, what failed and the fix.

The classes are Ironic's own, from :mod:`ironic.common.exception`: with
JSON-RPC (an API apart from its conductors) Ironic re-raises on the API
side only exceptions of that module, and any other class reaches the API
user as "Unexpected error raised by RPC" with the message lost.

============================  ======================  =====================
core exception                Ironic exception        why
============================  ======================  =====================
AuthFailed                    InvalidParameterValue   the fix is driver_info
ConnectionFailed              TemporaryFailure (503)  the hypervisor may
                                                      come back
AmbiguousDomain,              InvalidParameterValue   the fix is driver_info
DomainNotFound                                        or the ports
InvalidDomainXML              InvalidParameterValue   the domain cannot do it
any other                     DriverOperationError
============================  ======================  =====================
"""

from ironic.common import exception
from ironic.common.i18n import _

from ironic_libvirt.virt import errors

# What to check when the hypervisor refuses or cannot be reached.
AUTH_FIX = _('Check driver_info sasl_username and sasl_password.')
CONNECTION_FIX = _('Check driver_info libvirt_uri, ssh_key_filename and '
                   'tls_pki_path, and that libvirtd runs on that host.')


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
    :returns: an exception of :mod:`ironic.common.exception`.
    """
    failed = _('Node %(node)s: %(action)s failed') % {
        'node': node, 'action': action}
    if isinstance(exc, errors.ConnectionFailed):
        # Credentials are the node's to fix; anything else may pass.
        cls, fix = ((exception.InvalidParameterValue, AUTH_FIX)
                    if isinstance(exc, errors.AuthFailed)
                    else (exception.TemporaryFailure, CONNECTION_FIX))
        return cls(_('%(failed)s: cannot use the hypervisor at %(uri)s: '
                     '%(error)s. %(fix)s') % {
            'failed': failed, 'uri': info.params.uri, 'error': exc,
            'fix': fix})
    if isinstance(exc, errors.AmbiguousDomain):
        return exception.InvalidParameterValue(
            _('%(failed)s: %(error)s. Set driver_info libvirt_domain to one '
              'of them.') % {'failed': failed, 'error': exc})
    if isinstance(exc, errors.DomainNotFound):
        fix = (_('Check driver_info libvirt_domain.') if info.domain else
               _("Check the MAC addresses of the node's ports or set "
                 "driver_info libvirt_domain."))
        return exception.InvalidParameterValue(
            _('%(failed)s: %(error)s. %(fix)s') %
            {'failed': failed, 'error': exc, 'fix': fix})
    if isinstance(exc, errors.InvalidDomainXML):
        return exception.InvalidParameterValue(
            _('%(failed)s: %(error)s.') % {'failed': failed, 'error': exc})
    return exception.DriverOperationError(
        _('%(failed)s: %(error)s') % {'failed': failed, 'error': exc})
