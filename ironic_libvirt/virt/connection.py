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

"""Connections to hypervisors: URI policy, opening, caching, reconnecting.

Whoever writes a node's ``driver_info`` chooses the URI the conductor opens,
and libvirt URIs can make the client run programs (``command=``,
``netcat=``, ``qemu+ext``) or read paths of the caller's choosing
(``socket=``, ``keyfile=``, ``pkipath=``, ``known_hosts=``). :func:`check_uri`
admits only known drivers, transports and query parameters; key files and
PKI directories come from separate parameters that the operator can confine
to configured directories.

One :class:`Connection` is kept per :class:`ConnectionParams` (URI and
credentials) in a bounded, thread-safe :class:`ConnectionCache`. libvirt
keepalive, run by an event loop thread, detects dead peers; a close callback
marks the link dead, and a call that meets a broken link reopens it and is
retried once.

A connection also keeps a domain handle (``virDomain``) per UUID, so that a
call on a known domain is one round trip instead of a lookup and the call.
libvirt resolves a handle by its UUID on every call, in every driver: a
handle never reaches another domain, and one whose domain was undefined and
defined again with the same UUID reads the new definition, as a fresh
lookup would. Handles die with their link, are dropped when a call reports
the domain gone, and when libvirt's lifecycle event says it was undefined.
"""

import collections
import concurrent.futures
import dataclasses
import logging
import os
import re
import threading
import urllib.parse

import libvirt

from ironic_libvirt.virt import errors

LOG = logging.getLogger(__name__)

QEMU_TRANSPORTS = frozenset(['', 'unix', 'ssh', 'libssh', 'libssh2', 'tcp',
                             'tls'])
SSH_TRANSPORTS = frozenset(['ssh', 'libssh', 'libssh2'])
QEMU_PATHS = frozenset(['/system', '/session'])

# Query parameters a URI may carry, with their allowed values (None: any
# value that matches the pattern of the parameter).
_SSHAUTH_METHODS = frozenset(['agent', 'privkey', 'password',
                              'keyboard-interactive'])
SAFE_QUERY_VALUES = {
    'no_verify': frozenset(['0', '1']),
    'no_tty': frozenset(['0', '1']),
    'proxy': frozenset(['auto', 'netcat', 'native']),
    'mode': frozenset(['auto', 'legacy', 'direct']),
    'known_hosts_verify': frozenset(['normal', 'auto', 'ignore']),
    'sshauth': None,
}
_HOST_RE = re.compile(r'^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})'
                      r'(?:\.[A-Za-z0-9-]{1,63})*|\[[0-9A-Fa-f:.]+\])$')
_USER_RE = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$')

# Errors that mean the link to the hypervisor is gone, not that the call
# itself failed.
_LINK_ERRORS = frozenset([libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_RPC,
                          libvirt.VIR_ERR_NO_CONNECT,
                          libvirt.VIR_ERR_INVALID_CONN,
                          libvirt.VIR_ERR_INTERNAL_ERROR])
_AUTH_ERRORS = frozenset([libvirt.VIR_ERR_AUTH_FAILED,
                          libvirt.VIR_ERR_AUTH_CANCELLED,
                          libvirt.VIR_ERR_AUTH_UNAVAILABLE])


def _silence_default_error_handler():
    # libvirt prints every error to stderr unless a handler is registered;
    # errors reach the callers as exceptions instead.
    libvirt.registerErrorHandler(lambda ctx, err: None, None)


_silence_default_error_handler()


@dataclasses.dataclass(frozen=True)
class ConnectionParams:
    """What identifies a connection: the URI and the credentials.

    Instances are hashable cache keys; the password is left out of
    ``repr()`` so that a key never prints a secret.
    """

    uri: str
    ssh_key_filename: str | None = None
    tls_pki_path: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = dataclasses.field(default=None, repr=False)

    @property
    def effective_uri(self):
        """The URI handed to libvirt: ``uri`` with key and PKI paths merged.

        The paths are added to the query string whether or not it already
        has one.
        """
        extra = []
        if self.ssh_key_filename:
            extra.append(('keyfile', self.ssh_key_filename))
        if self.tls_pki_path:
            extra.append(('pkipath', self.tls_pki_path))
        if not extra:
            return self.uri
        parts = urllib.parse.urlsplit(self.uri)
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        query = urllib.parse.urlencode(query + extra, safe='/',
                                       quote_via=urllib.parse.quote)
        return urllib.parse.urlunsplit(parts._replace(query=query))


def _transport(uri_parts):
    driver, _, transport = uri_parts.scheme.partition('+')
    return driver, transport


def check_uri(params, allow_test_driver=False, allowed_path_dirs=()):
    """Check connection parameters against the URI policy.

    Nothing is opened; this only parses.

    :param params: a :class:`ConnectionParams`.
    :param allow_test_driver: whether libvirt's embedded ``test`` driver is
        admitted.
    :param allowed_path_dirs: directories the key file and PKI directory
        must lie in; empty to admit any absolute path.
    :raises: UnsafeURI naming the refused part.
    """
    if not params.uri.isascii() or not params.uri.isprintable() or any(
            c.isspace() for c in params.uri):
        # Python's URL parser drops some of these characters and libvirt's
        # does not: the two must see the same URI.
        raise errors.UnsafeURI('it may hold only printable ASCII characters '
                               'without spaces', 'libvirt_uri')
    try:
        parts = urllib.parse.urlsplit(params.uri)
        port = parts.port
    except ValueError as exc:
        raise errors.UnsafeURI('it cannot be parsed: %s' % exc, 'libvirt_uri')
    if params.uri.partition(':')[0] != parts.scheme:
        # urlsplit() lowercases the scheme; libvirt sees it as written.
        raise errors.UnsafeURI('the scheme must be written in lower case',
                               'libvirt_uri')
    driver, transport = _transport(parts)

    if driver == 'test':
        if not allow_test_driver:
            raise errors.UnsafeURI(
                "libvirt's test driver is disabled; set [libvirt] "
                "allow_test_driver = true to use it", 'libvirt_uri')
        if transport or parts.netloc or parts.query or parts.fragment:
            raise errors.UnsafeURI('a test URI is test:///default or '
                                   'test:///ABSOLUTE/PATH.xml', 'libvirt_uri')
        if params.ssh_key_filename or params.tls_pki_path:
            raise errors.UnsafeURI('the test driver takes no key or PKI '
                                   'path', 'ssh_key_filename')
        return
    if driver != 'qemu' or transport not in QEMU_TRANSPORTS:
        raise errors.UnsafeURI(
            'only qemu URIs over unix, ssh, libssh, libssh2, tcp or tls '
            'are allowed, not %r' % parts.scheme, 'libvirt_uri')
    if parts.path not in QEMU_PATHS:
        raise errors.UnsafeURI('the path must be /system or /session',
                               'libvirt_uri')
    if parts.fragment:
        raise errors.UnsafeURI('a fragment is not allowed', 'libvirt_uri')
    _check_authority(parts, transport, port)
    _check_query(parts.query)
    _check_paths(params, transport, parts, allowed_path_dirs)


def _check_authority(parts, transport, port):
    if parts.password is not None:
        raise errors.UnsafeURI('a password in the URI is not allowed; use '
                               'sasl_username and sasl_password',
                               'libvirt_uri')
    if transport in ('', 'unix') and not parts.hostname:
        if parts.netloc:
            raise errors.UnsafeURI('a local URI has no user or port',
                                   'libvirt_uri')
        return
    if transport == 'unix':
        raise errors.UnsafeURI('a unix URI names no host', 'libvirt_uri')
    host = parts.netloc.rpartition('@')[2]
    if port is not None:
        host = host[:host.rindex(':')]
    if not _HOST_RE.match(host):
        raise errors.UnsafeURI('the host %r is not a host name or IP '
                               'address' % host, 'libvirt_uri')
    if parts.username is not None and not _USER_RE.match(parts.username):
        raise errors.UnsafeURI('the user name %r is not allowed'
                               % parts.username, 'libvirt_uri')


def _check_query(query):
    for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        if not name:
            raise errors.UnsafeURI('a query parameter has no name',
                                   'libvirt_uri')
        if name not in SAFE_QUERY_VALUES:
            raise errors.UnsafeURI(
                'the query parameter %r is not allowed (allowed: %s; key '
                'files and PKI directories have driver_info keys of their '
                'own)' % (name, ', '.join(sorted(SAFE_QUERY_VALUES))), name)
        allowed = SAFE_QUERY_VALUES[name]
        if name == 'sshauth':
            ok = value and set(value.split(',')) <= _SSHAUTH_METHODS
        else:
            ok = value in allowed
        if not ok:
            raise errors.UnsafeURI('%r is not an allowed value of %s'
                                   % (value, name), name)


def _check_paths(params, transport, parts, allowed_dirs):
    for key, path, needed in (
            ('ssh_key_filename', params.ssh_key_filename,
             transport in SSH_TRANSPORTS),
            ('tls_pki_path', params.tls_pki_path,
             transport == 'tls' or (not transport and parts.hostname))):
        if path is None:
            continue
        if not needed:
            raise errors.UnsafeURI('%s does not apply to the transport of '
                                   'this URI' % key, key)
        if not os.path.isabs(path) or '\x00' in path:
            raise errors.UnsafeURI('%s must be an absolute path' % key, key)
        real = os.path.realpath(path)
        if allowed_dirs and not any(
                os.path.commonpath([real, os.path.realpath(d)])
                == os.path.realpath(d) for d in allowed_dirs):
            raise errors.UnsafeURI(
                '%s must lie in one of the directories of [libvirt] '
                'allowed_path_dirs: %s' % (key, ', '.join(allowed_dirs)),
                key)


def _request_credentials(credentials, params):
    for cred in credentials:
        if cred[0] == libvirt.VIR_CRED_AUTHNAME:
            cred[4] = params.sasl_username
        elif cred[0] == libvirt.VIR_CRED_PASSPHRASE:
            cred[4] = params.sasl_password
        else:
            return -1
    return 0


def _error_text(exc):
    """libvirt's message without ssh's known_hosts chatter before it."""
    lines = (exc.get_error_message() or str(exc)).splitlines()
    return ' '.join(line.strip() for line in lines
                    if line.strip() and not line.startswith(
                        'Warning: Permanently added'))


def open_connection(params):
    """Open a new libvirt connection.

    :param params: a :class:`ConnectionParams`, already checked.
    :returns: a ``libvirt.virConnect``.
    :raises: AuthFailed if the hypervisor refuses the credentials.
    :raises: ConnectionFailed if it cannot be reached.
    """
    try:
        if params.sasl_username is not None:
            auth = [[libvirt.VIR_CRED_AUTHNAME, libvirt.VIR_CRED_PASSPHRASE],
                    _request_credentials, params]
            return libvirt.openAuth(params.effective_uri, auth, 0)
        return libvirt.open(params.effective_uri)
    except libvirt.libvirtError as exc:
        message = _error_text(exc)
        if exc.get_error_code() in _AUTH_ERRORS:
            raise errors.AuthFailed(message)
        raise errors.ConnectionFailed(message)


class EventLoop:
    """libvirt's default event loop, run by one daemon thread.

    Keepalive and close callbacks need it; it must be registered before the
    first connection is opened.
    """

    _lock = threading.Lock()
    _started = False

    @classmethod
    def ensure_running(cls):
        """Register and start the event loop once per process."""
        with cls._lock:
            if cls._started:
                return
            libvirt.virEventRegisterDefaultImpl()
            threading.Thread(target=cls._run, name='libvirt-event-loop',
                             daemon=True).start()
            cls._started = True

    @staticmethod
    def _run():
        while True:
            libvirt.virEventRunDefaultImpl()


@dataclasses.dataclass(frozen=True)
class ConnectionSettings:
    """How connections are kept.

    :ivar keepalive_interval: seconds between keepalive probes (0: off).
    :ivar keepalive_count: unanswered probes before the link is closed.
    :ivar open_timeout: seconds to wait for a connection to open.
    """

    keepalive_interval: int = 5
    keepalive_count: int = 3
    open_timeout: float = 30.0


def _is_link_error(conn, exc):
    if exc.get_error_code() not in _LINK_ERRORS:
        return False
    try:
        return not conn.isAlive()
    except libvirt.libvirtError:
        return True


class Connection:
    """A kept link to one hypervisor for one set of credentials.

    The underlying ``virConnect`` is opened on first use and reopened after
    it breaks; :meth:`call` is the way to use it.
    """

    def __init__(self, params, settings):
        self.params = params
        self._settings = settings
        self._lock = threading.Lock()
        self._conn = None
        self._opening = None
        self._dead = []
        self._retired = False
        # UUID -> (virConnect, virDomain): a handle is used only on the
        # link it was looked up on.
        self._handles = {}
        # virConnect -> its lifecycle event callback ID.
        self._event_ids = {}

    def __repr__(self):
        return '<Connection %s>' % self.params.uri

    def call(self, func, what, subject=None):
        """Run ``func(virConnect)``, reconnecting and retrying once.

        :param func: a callable taking a ``libvirt.virConnect``.
        :param what: what the call does, for error messages.
        :param subject: what it is done to, for error messages; formatted
            only when an error occurs.
        :returns: what ``func`` returns.
        :raises: ConnectionFailed, AuthFailed if the link cannot be had.
        :raises: DomainNotFound if libvirt reports no such domain.
        :raises: OperationFailed on any other libvirt error.
        """
        try:
            return self._call(func, what, subject)
        finally:
            if self._retired:
                # Evicted from the cache while in use: whatever this call
                # opened must not outlive it.
                self.close()

    def _call(self, func, what, subject):
        conn = self._current()
        try:
            return func(conn)
        except libvirt.libvirtError as exc:
            if not _is_link_error(conn, exc):
                raise _translate(exc, what, subject)
            LOG.info('The connection to %s broke (%s); reconnecting once.',
                     self.params.uri, exc.get_error_message())
        self._discard(conn)
        conn = self._current()
        try:
            return func(conn)
        except libvirt.libvirtError as exc:
            if _is_link_error(conn, exc):
                self._discard(conn)
                raise errors.ConnectionFailed('%s: the connection to %s '
                                              'broke again: %s'
                                              % (_describe(what, subject),
                                                 self.params.uri,
                                                 exc.get_error_message()))
            raise _translate(exc, what, subject)

    def call_domain(self, uuid, func, what, subject=None):
        """Run ``func(virDomain)`` on the domain ``uuid``, as :meth:`call`.

        The handle is looked up once per link and kept.

        :raises: as :meth:`call`; DomainNotFound if the domain is gone.
        """
        def run(conn):
            entry = self._handles.get(uuid)
            if entry is None or entry[0] is not conn:
                entry = self._handles[uuid] = (
                    conn, conn.lookupByUUIDString(uuid))
            try:
                return func(entry[1])
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    self._forget_handle(uuid, entry)
                raise

        return self.call(run, what, subject)

    def _forget_handle(self, uuid, entry):
        # Only this entry: another thread may have put a newer one.
        if self._handles.get(uuid) is entry:
            self._handles.pop(uuid, None)

    def retire(self):
        """Close for good: the cache no longer holds this connection.

        A call in flight may still finish; it closes what it opened.
        """
        self._retired = True
        self.close()

    def close(self):
        """Close the underlying connection, if open."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            self._discard(conn)

    def _current(self):
        with self._lock:
            dead, self._dead = self._dead, []
            if self._conn is not None:
                conn = self._conn
                future = None
            else:
                future = self._opening
                if future is None:
                    future = self._opening = concurrent.futures.Future()
                    threading.Thread(target=self._open, args=(future,),
                                     name='libvirt-open', daemon=True).start()
        for old in dead:
            self._close_quietly(old)
        if future is None:
            return conn
        try:
            return future.result(timeout=self._settings.open_timeout)
        except concurrent.futures.TimeoutError:
            raise errors.ConnectionFailed(
                'opening %s did not finish within %s seconds ([libvirt] '
                'open_timeout)' % (self.params.uri,
                                   self._settings.open_timeout))

    def _open(self, future):
        # Whatever fails here must resolve the future, or every caller
        # would wait open_timeout and the next call would never retry.
        conn = None
        try:
            conn = open_connection(self.params)
            self._configure(conn)
        except Exception as exc:
            if conn is not None:
                self._close_quietly(conn)
            if not isinstance(exc, errors.LibvirtCoreError):
                LOG.exception('Opening a connection to %s failed',
                              self.params.uri)
                exc = errors.ConnectionFailed(
                    'opening %s failed: %s' % (self.params.uri, exc))
            with self._lock:
                self._opening = None
            future.set_exception(exc)
            return
        with self._lock:
            self._conn = conn
            self._opening = None
        LOG.debug('Opened a connection to %s', self.params.uri)
        future.set_result(conn)

    def _configure(self, conn):
        """Turn on keepalive and the close callback of a new connection.

        :raises: ConnectionFailed if libvirt refuses either.
        """
        interval = self._settings.keepalive_interval
        try:
            if interval:
                conn.setKeepAlive(interval, self._settings.keepalive_count)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
                raise errors.ConnectionFailed(
                    'enabling keepalive on %s failed: %s'
                    % (self.params.uri, exc.get_error_message()))
            # Local drivers (test:///) have no peer to keep alive.
        try:
            conn.registerCloseCallback(self._on_closed, None)
        except libvirt.libvirtError as exc:
            raise errors.ConnectionFailed(
                'registering the close callback on %s failed: %s'
                % (self.params.uri, exc.get_error_message()))
        try:
            self._event_ids[conn] = conn.domainEventRegisterAny(
                None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                self._on_lifecycle, None)
        except libvirt.libvirtError as exc:
            # Handles are still right without it (libvirt resolves them by
            # UUID); an undefined domain's handle then lives until a call
            # reports it gone or the link closes.
            LOG.debug('No domain lifecycle events from %s: %s',
                      self.params.uri, exc.get_error_message())

    def _on_lifecycle(self, conn, dom, event, detail, opaque):
        # Runs in the event loop thread: only drops the handle (of whatever
        # link: dropping costs one lookup at most).
        if event == libvirt.VIR_DOMAIN_EVENT_UNDEFINED:
            self._handles.pop(dom.UUIDString(), None)

    def _on_closed(self, conn, reason, opaque):
        # Runs in the event loop thread, where closing is not allowed: the
        # link is only marked dead and closed by the next caller.
        LOG.info('The connection to %s was closed (reason %s).',
                 self.params.uri, reason)
        with self._lock:
            if self._conn is not None and self._conn is conn:
                self._conn = None
                self._dead.append(conn)

    def _discard(self, conn):
        with self._lock:
            if self._conn is conn:
                self._conn = None
        self._close_quietly(conn)

    def _close_quietly(self, conn):
        # The link is being dropped; a failure to close it changes nothing
        # for the caller, but is worth a line in the log. Handles and the
        # event callback hold references that would keep it open.
        for uuid, entry in list(self._handles.items()):
            if entry[0] is conn:
                self._forget_handle(uuid, entry)
        event_id = self._event_ids.pop(conn, None)
        if event_id is not None:
            try:
                conn.domainEventDeregisterAny(event_id)
            except libvirt.libvirtError as exc:
                LOG.debug('Deregistering the lifecycle events of %s '
                          'failed: %s', self.params.uri,
                          exc.get_error_message())
        try:
            conn.unregisterCloseCallback()
        except libvirt.libvirtError as exc:
            LOG.debug('Unregistering the close callback of %s failed: %s',
                      self.params.uri, exc.get_error_message())
        try:
            conn.close()
        except libvirt.libvirtError as exc:
            LOG.debug('Closing the connection to %s failed: %s',
                      self.params.uri, exc.get_error_message())


def _describe(what, subject):
    return what if subject is None else '%s of %s' % (what, subject)


def _translate(exc, what, subject):
    message = '%s: %s' % (_describe(what, subject),
                          exc.get_error_message() or exc)
    code = exc.get_error_code()
    if code == libvirt.VIR_ERR_NO_DOMAIN:
        return errors.DomainNotFound(message)
    if code in _AUTH_ERRORS:
        return errors.AuthFailed(message)
    return errors.OperationFailed(message)


class ConnectionCache:
    """A bounded LRU of :class:`Connection`, one per :class:`ConnectionParams`.

    Thread-safe. The least recently used connection is closed when the cache
    is full.
    """

    def __init__(self, size=64, settings=None):
        self._size = size
        self._settings = settings or ConnectionSettings()
        self._lock = threading.Lock()
        self._entries = collections.OrderedDict()
        EventLoop.ensure_running()

    def get(self, params):
        """Return the connection for ``params``, creating it if needed.

        The link itself is opened by the first call made through it.
        """
        with self._lock:
            entry = self._entries.get(params)
            if entry is not None:
                self._entries.move_to_end(params)
                return entry
            entry = self._entries[params] = Connection(params, self._settings)
            evicted = []
            while len(self._entries) > self._size:
                evicted.append(self._entries.popitem(last=False)[1])
        for old in evicted:
            LOG.debug('Connection cache full: closing %r', old)
            old.retire()
        return entry

    @property
    def settings(self):
        """The :class:`ConnectionSettings` of every connection made."""
        return self._settings

    def __len__(self):
        return len(self._entries)

    def close_all(self):
        """Close and forget every connection."""
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        for entry in entries:
            entry.retire()
