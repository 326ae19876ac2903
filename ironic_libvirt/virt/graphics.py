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

"""A domain's VNC server: password-protected, and relayed without password.

:func:`enable` gives the domain a VNC server on one address with a new
password, live and in its definition; :func:`disable` replaces the password
with an expired one nobody knows, so that the server accepts nobody. The
password lives only in the domain (libvirt shows it in secure XML only).

:func:`relay` connects to the VNC server, answers its password challenge
(RFB "VNC authentication", RFC 6143 7.2.2) and offers the client the same
session without authentication ("None"): that is the only kind of server
Ironic's ``ironic-novncproxy`` can talk to.
"""

import logging
import os
import secrets
import selectors
import socket
import string
import struct
import urllib.parse

from cryptography.hazmat.decrepit.ciphers import algorithms
from cryptography.hazmat.primitives.ciphers import Cipher
from cryptography.hazmat.primitives.ciphers import modes
import libvirt

from ironic_libvirt.virt import domain_xml
from ironic_libvirt.virt import errors

LOG = logging.getLogger(__name__)

# VNC authentication uses the first 8 characters of a password only.
PASSWORD_LENGTH = 8
_ALPHABET = string.ascii_letters + string.digits
_LIVE_XML = libvirt.VIR_DOMAIN_XML_SECURE
_RFB_VERSION = b'RFB 003.008\n'
_SECURITY_NONE = 1
_SECURITY_VNC = 2
_WILDCARDS = ('0.0.0.0', '::', '')
_CHUNK = 65536


class RestartNeeded(errors.LibvirtCoreError):
    """The running domain cannot get the VNC server it needs until restart."""


class RelayFailed(errors.LibvirtCoreError):
    """The VNC server cannot be reached or refused the password."""


def new_password():
    """A random VNC password of :data:`PASSWORD_LENGTH` characters."""
    return ''.join(secrets.choice(_ALPHABET) for _ in range(PASSWORD_LENGTH))


def _live_xml(domain):
    """The running domain's secure XML, or None when it is not running."""
    def read(dom):
        return dom.XMLDesc(_LIVE_XML) if dom.isActive() else None
    return domain.connection.call_domain(
        domain.uuid, read, 'reading the running domain', domain)


def _update_live(domain, device, what):
    domain.connection.call_domain(
        domain.uuid,
        lambda dom: dom.updateDeviceFlags(device,
                                          libvirt.VIR_DOMAIN_AFFECT_LIVE),
        what, domain)


def enable(domain, listen, password):
    """Give the domain a VNC server on ``listen`` accepting ``password``.

    The definition gets the server (so the next start has it); a running
    domain's server gets the new password at once.

    :param domain: a :class:`~ironic_libvirt.virt.domain.Domain`.
    :param listen: the IP address QEMU listens on.
    :raises: RestartNeeded if the running domain has no VNC server on
        ``listen``, or the hypervisor refuses to change its password: the
        definition has both, and they apply at the next power on.
    :raises: OperationFailed if libvirt refuses to change the definition.
    """
    domain.edit_definition(
        lambda xml: domain_xml.set_vnc(xml, listen, password),
        'adding a VNC server')
    live = _live_xml(domain)
    if live is None:
        return
    current = domain_xml.vnc(live)
    if current is None or current['listen'] != listen:
        raise RestartNeeded(
            '%s runs without a VNC server on %s; its definition has one now, '
            'which starts at the next power on: power the node off and on, '
            'then enable the console again' % (domain, listen))
    try:
        _update_live(domain, domain_xml.vnc_device(live, password),
                     'setting the VNC password')
    except errors.OperationFailed as exc:
        raise RestartNeeded(
            '%s: the hypervisor refuses to change the VNC password of the '
            'running domain (%s); the new password applies at the next '
            'power on: power the node off and on, then enable the console '
            'again' % (domain, exc))


def disable(domain):
    """Make the domain's VNC server accept no password, live and defined.

    :param domain: a :class:`~ironic_libvirt.virt.domain.Domain`.
    :raises: OperationFailed if libvirt refuses the change.
    """
    unknown = new_password()

    def expire(xml):
        current = domain_xml.vnc(xml)
        if current is None:
            return xml
        return domain_xml.set_vnc(xml, current['listen'], unknown,
                                  expired=True)

    domain.edit_definition(expire, 'expiring the VNC password')
    live = _live_xml(domain)
    if live is not None and domain_xml.vnc(live) is not None:
        _update_live(domain, domain_xml.vnc_device(live, unknown,
                                                   expired=True),
                     'expiring the VNC password')


def target(domain):
    """Where the running domain's VNC server is, and its password.

    A server listening on all addresses is reached at the hypervisor's
    host name from the connection URI.

    :returns: a tuple (host, port, password).
    :raises: RelayFailed if the domain runs without a VNC server.
    """
    live = _live_xml(domain)
    current = None if live is None else domain_xml.vnc(live)
    if current is None or current['port'] is None:
        raise RelayFailed('%s does not run with a VNC server' % domain)
    host = current['listen']
    if host is None or host in _WILDCARDS:
        host = (urllib.parse.urlsplit(domain.connection.params.uri).hostname
                or '127.0.0.1')
    return host, current['port'], current['password'] or ''


def vnc_response(password, challenge):
    """The answer to a VNC authentication challenge.

    DES with the password (8 bytes, zero padded) as key, each key byte's
    bits mirrored, as VNC servers expect. TripleDES with three equal
    keys is single DES.
    """
    key = password.encode('utf-8')[:PASSWORD_LENGTH].ljust(
        PASSWORD_LENGTH, b'\0')
    key = bytes(int('{:08b}'.format(b)[::-1], 2) for b in key)
    encryptor = Cipher(algorithms.TripleDES(key * 3),
                       modes.ECB()).encryptor()
    return encryptor.update(challenge) + encryptor.finalize()


def _read_exact(read, count, peer):
    """``count`` bytes from ``read(n)``; RelayFailed if ``peer`` closes."""
    data = b''
    while len(data) < count:
        chunk = read(count - len(data))
        if not chunk:
            raise RelayFailed('%s closed the connection' % peer)
        data += chunk
    return data


def _recv(sock, count):
    return _read_exact(sock.recv, count, 'the VNC server')


def _reason(sock):
    length = struct.unpack('!I', _recv(sock, 4))[0]
    return _recv(sock, min(length, 1024)).decode('utf-8', 'replace')


def authenticate(sock, password):
    """Run the RFB 3.8 handshake with a VNC server up to ClientInit.

    :param sock: a socket connected to the VNC server.
    :raises: RelayFailed if the server refuses the password or offers
        no VNC authentication.
    """
    version = _recv(sock, len(_RFB_VERSION))
    if not version.startswith(b'RFB 003.'):
        raise RelayFailed('not a VNC server')
    sock.sendall(_RFB_VERSION)
    count = _recv(sock, 1)[0]
    if count == 0:
        raise RelayFailed('the VNC server refuses: %s' % _reason(sock))
    if _SECURITY_VNC not in _recv(sock, count):
        raise RelayFailed('the VNC server does not ask for a password')
    sock.sendall(bytes((_SECURITY_VNC,)))
    sock.sendall(vnc_response(password, _recv(sock, 16)))
    if struct.unpack('!I', _recv(sock, 4))[0] != 0:
        raise RelayFailed('the VNC server refused the password: %s'
                          % _reason(sock))


def _read_fd(fd, count):
    return _read_exact(lambda n: os.read(fd, n), count, 'the client')


def _greet(in_fd, out_fd):
    """Exchange protocol versions with the client, as its server."""
    os.write(out_fd, _RFB_VERSION)
    _read_fd(in_fd, len(_RFB_VERSION))


def _offer_no_auth(in_fd, out_fd):
    """The server side of the handshake towards the client: no password."""
    _greet(in_fd, out_fd)
    os.write(out_fd, bytes((1, _SECURITY_NONE)))
    if _read_fd(in_fd, 1)[0] != _SECURITY_NONE:
        raise RelayFailed('the client chose a security type not offered')
    os.write(out_fd, struct.pack('!I', 0))


def _pipe(sock, in_fd, out_fd):
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        selector.register(in_fd, selectors.EVENT_READ)
        while True:
            for key, _ in selector.select():
                if key.fileobj is sock:
                    data = sock.recv(_CHUNK)
                    if not data:
                        return
                    os.write(out_fd, data)
                else:
                    data = os.read(in_fd, _CHUNK)
                    if not data:
                        return
                    sock.sendall(data)


def _connect(domain, timeout):
    host, port, password = target(domain)
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise RelayFailed('cannot reach the VNC server of %s at %s:%s: %s'
                          % (domain, host, port, exc.strerror or exc))
    try:
        authenticate(sock, password)
    except (OSError, RelayFailed) as exc:
        sock.close()
        raise RelayFailed('the VNC server of %s at %s:%s: %s'
                          % (domain, host, port,
                             getattr(exc, 'strerror', None) or exc))
    sock.settimeout(None)
    return sock


def _refuse(domain, in_fd, out_fd):
    reason = b'The screen of this machine is not available.'
    try:
        _greet(in_fd, out_fd)
        os.write(out_fd, b'\0' + struct.pack('!I', len(reason)) + reason)
    except (OSError, RelayFailed) as exc:
        LOG.debug('The VNC client of %s left before the refusal: %s',
                  domain, exc)


def relay(domain, in_fd, out_fd, timeout=30):
    """Serve the domain's screen to a VNC client on ``in_fd``/``out_fd``.

    Authenticates to the domain's VNC server with the password it runs
    with, then offers the client the session without a password,
    and copies bytes both ways until either side closes.

    :param domain: a :class:`~ironic_libvirt.virt.domain.Domain`.
    :param timeout: seconds to connect and authenticate.
    :raises: RelayFailed if the VNC server cannot be used.
    """
    try:
        sock = _connect(domain, timeout)
    except RelayFailed:
        # The client learns only that the screen is unavailable; the
        # reason is for the operator (the exception).
        _refuse(domain, in_fd, out_fd)
        raise
    with sock:
        _offer_no_auth(in_fd, out_fd)
        try:
            _pipe(sock, in_fd, out_fd)
        except OSError as exc:
            # Either side went away: the session is over.
            LOG.debug('VNC relay of %s ended: %s', domain, exc)
