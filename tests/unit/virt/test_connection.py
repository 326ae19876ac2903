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

"""Connections, their cache and the URI policy (no Ironic).

Connections are opened on libvirt's test driver. Failures while opening
are injected by wrapping a real ``test:///`` connection, since the test
driver itself never fails to register a close callback or to enable
keepalive.

The URI policy is also checked property-based: whatever URI a user
writes, an accepted one never makes libvirt run a program or open a path
the user picks. The oracle parses query strings the way libvirt does
(``&`` or ``;`` between parameters, percent-escapes decoded),
independently of the driver.
"""

import os
import tempfile
import time
import urllib.parse

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import libvirt
import testtools

from ironic_libvirt.drivers import resolution
from ironic_libvirt.virt import connection
from ironic_libvirt.virt import domain
from ironic_libvirt.virt import errors
from tests.unit import base

Params = connection.ConnectionParams


def _real_libvirt_error(conn):
    """A libvirtError as libvirt raises it (a lookup of no domain)."""
    try:
        conn.lookupByName('no-such-domain')
    except libvirt.libvirtError as exc:
        return exc
    raise AssertionError('the test driver found no-such-domain')


class _FailingConnection:
    """A real connection whose method ``failing`` raises ``error(conn)``."""

    def __init__(self, conn, failing, error):
        self.real = conn
        self._failing = failing
        self._error = error

    def __getattr__(self, name):
        if name == self._failing:
            def fail(*args):
                raise self._error(self.real)
            return fail
        return getattr(self.real, name)


class OpenFailureTestCase(base.TestCase):
    """A failed open fails its callers, closes what it opened, retries."""

    def setUp(self):
        super().setUp()
        self.opened = []
        self.inject = None
        real_open = connection.open_connection

        def open_and_maybe_break(params):
            conn = real_open(params)
            self.opened.append(conn)
            if self.inject is not None:
                failing, error = self.inject
                self.inject = None
                return _FailingConnection(conn, failing, error)
            return conn

        self.patch(connection, 'open_connection', open_and_maybe_break)
        # A regression shows as 'did not finish within 30 seconds'.
        self.connection = connection.Connection(
            connection.ConnectionParams(uri=base.TEST_URI),
            connection.ConnectionSettings(open_timeout=30))
        self.addCleanup(self.connection.close)

    def _state(self):
        return self.connection.call(
            lambda conn: conn.lookupByName('node-0').state()[0], 'reading')

    def _assert_open_fails_then_recovers(self, expected):
        exc = self.assertRaises(errors.ConnectionFailed, self._state)
        self.assertIn(expected, str(exc))
        self.assertNotIn('open_timeout', str(exc))
        # What the failed open opened is closed.
        self.assertRaises(libvirt.libvirtError, self.opened[0].isAlive)
        # The next call opens again and works.
        self.assertEqual(libvirt.VIR_DOMAIN_SHUTOFF, self._state())
        self.assertEqual(2, len(self.opened))

    def test_close_callback_refused_by_libvirt(self):
        self.inject = ('registerCloseCallback', _real_libvirt_error)
        self._assert_open_fails_then_recovers(
            'registering the close callback on %s failed' % base.TEST_URI)

    def test_unexpected_exception_while_configuring(self):
        self.inject = ('registerCloseCallback',
                       lambda conn: RuntimeError('injected'))
        self._assert_open_fails_then_recovers(
            'opening %s failed: injected' % base.TEST_URI)

    def test_keepalive_refused(self):
        self.inject = ('setKeepAlive', _real_libvirt_error)
        self._assert_open_fails_then_recovers(
            'enabling keepalive on %s failed' % base.TEST_URI)

    def test_open_refused_then_retried(self):
        missing = connection.Connection(
            connection.ConnectionParams(uri='test:///no/such/file.xml'),
            connection.ConnectionSettings(open_timeout=30))
        for attempt in range(2):
            # Each call tries to open again and fails at once.
            exc = self.assertRaises(errors.ConnectionFailed, missing.call,
                                    lambda conn: None, 'connecting')
            self.assertNotIn('open_timeout', str(exc))
            self.assertIn('/no/such/file.xml', str(exc))
        self.assertEqual([], self.opened)


class ConnectionCacheTestCase(base.TestCase):

    def test_lru_bound(self):
        cache = connection.ConnectionCache(size=2)
        self.addCleanup(cache.close_all)
        params = [connection.ConnectionParams(uri=base.TEST_URI + suffix)
                  for suffix in ('', '?a', '?b')]
        # The query strings make three keys for one hypervisor file.
        first = cache.get(params[0])
        cache.get(params[1])
        self.assertIs(first, cache.get(params[0]))
        cache.get(params[2])
        self.assertEqual(2, len(cache))
        self.assertIsNotNone(cache.get(params[1]))
        self.assertEqual(2, len(cache))

    def test_evicted_connection_in_use_closes_after_its_call(self):
        cache = connection.ConnectionCache(size=1)
        self.addCleanup(cache.close_all)
        first = cache.get(connection.ConnectionParams(uri=base.TEST_URI))
        attempts = []

        def evicted_meanwhile(conn):
            attempts.append(conn)
            if len(attempts) == 1:
                # Another node's call fills the cache while this one runs,
                # and this call's link breaks: it must reconnect.
                cache.get(connection.ConnectionParams(
                    uri=base.TEST_URI + '?other'))
                conn.close()
            return conn.lookupByName('node-0').name()

        self.assertEqual('node-0', first.call(evicted_meanwhile, 'testing'))
        self.assertEqual(2, len(attempts))
        # The link the retry opened did not outlive the call.
        self.assertRaises(libvirt.libvirtError, attempts[1].isAlive)
        self.assertEqual(1, len(cache))

    def test_password_never_printed(self):
        params = connection.ConnectionParams(
            uri='qemu+tcp://hv/system', sasl_username='u',
            sasl_password='s3cret')
        self.assertNotIn('s3cret', repr(params))
        self.assertNotIn('s3cret', repr(connection.Connection(
            params, connection.ConnectionSettings())))

    def test_reopens_after_close(self):
        conn = self.hypervisor()
        conn.close()
        self.assertEqual(5, self.state('node-0'))

    def test_reset_builds_the_next_cache_from_the_configuration(self):
        self.config(open_timeout=3, group='libvirt')
        first = resolution.RESOLVER.connections()
        self.assertEqual(3, first.settings.open_timeout)
        resolution.RESOLVER.reset()
        self.config(open_timeout=45, group='libvirt')
        second = resolution.RESOLVER.connections()
        self.assertIsNot(first, second)
        self.assertEqual(45, second.settings.open_timeout)


class CheckURITestCase(testtools.TestCase):

    def check(self, uri, **kw):
        allow_test = kw.pop('allow_test_driver', False)
        dirs = kw.pop('allowed_path_dirs', ())
        connection.check_uri(Params(uri=uri, **kw),
                             allow_test_driver=allow_test,
                             allowed_path_dirs=dirs)

    def refused(self, uri, parameter, **kw):
        exc = self.assertRaises(errors.UnsafeURI, self.check, uri, **kw)
        self.assertEqual(parameter, exc.parameter, uri)
        return exc

    def test_accepted(self):
        for uri in ['qemu:///system', 'qemu:///session',
                    'qemu+unix:///system',
                    'qemu+ssh://root@hv1.example.com/system',
                    'qemu+ssh://root@10.0.0.1:2222/system'
                    '?no_verify=1&no_tty=1',
                    'qemu+libssh2://u@hv/system?sshauth=privkey,agent',
                    'qemu+tcp://hv:16509/system', 'qemu+tls://[::1]/system',
                    'qemu://hv/system']:
            self.check(uri)

    def test_refused_parameters(self):
        for uri, parameter in [
                ('qemu+ssh://hv/system?command=/bin/sh', 'command'),
                ('qemu+ssh://hv/system?netcat=/tmp/x', 'netcat'),
                ('qemu+ssh://hv/system?socket=/tmp/s', 'socket'),
                ('qemu+ssh://hv/system?keyfile=/root/.ssh/id', 'keyfile'),
                ('qemu+tls://hv/system?pkipath=/etc', 'pkipath'),
                ('qemu+ssh://hv/system?known_hosts=/etc/shadow',
                 'known_hosts'),
                ('qemu+tcp://hv/system?name=test:///etc/passwd', 'name'),
                ('qemu+ssh://hv/system?no_verify=yes', 'no_verify'),
                ('qemu+ssh://hv/system?sshauth=gssapi', 'sshauth'),
                ('qemu+ext:///system?command=/bin/sh', 'libvirt_uri'),
                ('xen:///system', 'libvirt_uri'),
                ('qemu:///embed?root=/tmp', 'libvirt_uri'),
                ('qemu+ssh://-oProxyCommand=x/system', 'libvirt_uri'),
                ('qemu+ssh://-lroot@hv/system', 'libvirt_uri'),
                ('qemu+ssh://root:pw@hv/system', 'libvirt_uri'),
                ('qemu+unix://hv/system', 'libvirt_uri'),
                ('test:///default', 'libvirt_uri')]:
            self.refused(uri, parameter)

    def test_password_is_not_echoed(self):
        exc = self.refused('qemu+ssh://root:hunter2@hv/system', 'libvirt_uri')
        self.assertNotIn('hunter2', str(exc))

    def test_test_driver_when_allowed(self):
        self.check('test:///default', allow_test_driver=True)
        self.refused('test:///default?x=1', 'libvirt_uri',
                     allow_test_driver=True)

    def test_key_file_only_for_ssh_and_absolute(self):
        self.refused('qemu+tcp://hv/system', 'ssh_key_filename',
                     ssh_key_filename='/k')
        self.refused('qemu+ssh://hv/system', 'ssh_key_filename',
                     ssh_key_filename='relative/key')
        self.refused('qemu+ssh://hv/system', 'tls_pki_path',
                     tls_pki_path='/etc/pki')
        self.check('qemu+tls://hv/system', tls_pki_path='/etc/pki')

    def test_paths_confined_to_allowed_dirs(self):
        with tempfile.TemporaryDirectory() as allowed:
            inside = os.path.join(allowed, 'id_ed25519')
            self.check('qemu+ssh://hv/system', ssh_key_filename=inside,
                       allowed_path_dirs=[allowed])
            self.refused('qemu+ssh://hv/system', 'ssh_key_filename',
                         ssh_key_filename=os.path.join(allowed, '..', 'k'),
                         allowed_path_dirs=[allowed])
            os.symlink('/etc/shadow', os.path.join(allowed, 'link'))
            self.refused('qemu+ssh://hv/system', 'ssh_key_filename',
                         ssh_key_filename=os.path.join(allowed, 'link'),
                         allowed_path_dirs=[allowed])


class EffectiveURITestCase(testtools.TestCase):

    def test_key_file_merged_with_or_without_query(self):
        self.assertEqual(
            'qemu+ssh://root@hv/system?keyfile=/etc/ironic/id%20rsa',
            Params('qemu+ssh://root@hv/system',
                   ssh_key_filename='/etc/ironic/id rsa').effective_uri)
        self.assertEqual(
            'qemu+ssh://root@hv/system?no_tty=1&keyfile=/k',
            Params('qemu+ssh://root@hv/system?no_tty=1',
                   ssh_key_filename='/k').effective_uri)

    def test_pki_path_merged(self):
        self.assertEqual(
            'qemu+tls://hv/system?pkipath=/etc/pki/x',
            Params('qemu+tls://hv/system',
                   tls_pki_path='/etc/pki/x').effective_uri)

    def test_no_paths_no_change(self):
        self.assertEqual('qemu:///system',
                         Params('qemu:///system').effective_uri)


# What libvirt's remote driver does with query parameters (libvirt's
# remote_driver.c and virnetclient.c): run a program, or open a path.
DANGEROUS = {'command', 'netcat', 'socket', 'keyfile', 'pkipath',
             'known_hosts', 'name'}
SCHEMES = ['qemu', 'qemu+unix', 'qemu+ssh', 'qemu+libssh', 'qemu+libssh2',
           'qemu+tcp', 'qemu+tls', 'qemu+ext', 'test', 'xen', 'lxc',
           'qemu+ssh+x', 'QEMU', 'qemu+SSH', 'vbox', 'ch']
PARAM_NAMES = sorted(DANGEROUS | set(connection.SAFE_QUERY_VALUES)
                     | {'mode', 'proxy', 'sshauth', ''})

text = st.text(max_size=12)
param_name = st.one_of(st.sampled_from(PARAM_NAMES), text)
param_value = st.one_of(
    st.sampled_from(['0', '1', 'auto', 'netcat', 'native', 'privkey',
                     'agent,privkey', '/bin/sh', '/etc/shadow', '-oX=y']),
    text)


def _escape_some(name, draw):
    """Percent-encode some characters of a name, as an attacker would."""
    return ''.join('%%%02X' % ord(c) if draw(st.booleans()) else c
                   for c in name)


@st.composite
def uris(draw):
    scheme = draw(st.sampled_from(SCHEMES))
    user = draw(st.one_of(st.just(''), st.sampled_from(
        ['root@', 'a:b@', '-oProxyCommand=x@']), text.map(lambda t: t + '@')))
    host = draw(st.one_of(st.just(''), st.sampled_from(
        ['hv', '127.0.0.1', '[::1]', '-oProxyCommand=x', 'hv:22']), text))
    path = draw(st.sampled_from(['/system', '/session', '/embed', '',
                                 '/default', '/etc/passwd.xml']))
    params = draw(st.lists(st.tuples(param_name, param_value), max_size=4))
    separator = draw(st.sampled_from(['&', ';']))
    query = separator.join(
        '%s=%s' % (_escape_some(n, draw), v) for n, v in params)
    tail = draw(st.sampled_from(['', '#frag', '\n', '\t', ' ']))
    return '%s://%s%s%s%s%s' % (scheme, user, host, path,
                                '?' + query if query else '', tail)


def libvirt_params(uri):
    """Query parameters as libvirt's virURIParseParams sees them."""
    query = uri.partition('?')[2].partition('#')[0]
    names = set()
    for chunk in query.replace(';', '&').split('&'):
        if chunk:
            names.add(urllib.parse.unquote(chunk.partition('=')[0]))
    return names


class URIPolicyFuzzTestCase(base.TestCase):

    @settings(max_examples=3000, deadline=None)
    @given(uris(), st.booleans())
    def test_accepted_uris_run_and_open_nothing(self, uri, allow_test):
        params = connection.ConnectionParams(uri=uri)
        try:
            connection.check_uri(params, allow_test_driver=allow_test)
        except errors.UnsafeURI as exc:
            self.assertTrue(exc.parameter)
            return
        scheme = uri.partition(':')[0]
        self.assertIn(scheme, {'qemu', 'qemu+unix', 'qemu+ssh',
                               'qemu+libssh', 'qemu+libssh2', 'qemu+tcp',
                               'qemu+tls'} | ({'test'} if allow_test else
                                              set()))
        self.assertFalse(libvirt_params(uri) & DANGEROUS, uri)
        self.assertEqual(uri.strip(), uri)


def _link_error():
    """A libvirtError as a broken link raises it.

    A link to libvirt's test driver cannot break, so the error is made.
    """
    exc = libvirt.libvirtError('injected: the link broke')
    exc.err = (libvirt.VIR_ERR_INVALID_CONN, libvirt.VIR_FROM_RPC,
               'injected: the link broke', libvirt.VIR_ERR_ERROR,
               None, None, None, 0, 0)
    return exc


class _Link:
    """A real connection that counts domain lookups and can break.

    Its domain handles are real ones that fail once the link is broken.
    """

    def __init__(self, conn):
        self.real = conn
        self.lookups = 0
        self.broken = False

    def check(self):
        if self.broken:
            raise _link_error()

    def isAlive(self):
        return not self.broken

    def lookupByUUIDString(self, uuid):
        self.check()
        self.lookups += 1
        return _Handle(self, self.real.lookupByUUIDString(uuid))

    def __getattr__(self, name):
        return getattr(self.real, name)


class _Handle:

    def __init__(self, link, dom):
        self._link = link
        self._dom = dom

    def __getattr__(self, name):
        method = getattr(self._dom, name)

        def call(*args):
            self._link.check()
            return method(*args)
        return call


class DomainHandleTestCase(base.TestCase):
    """One lookup per domain and link; never a stale domain's data."""

    def setUp(self):
        super().setUp()
        self.links = []
        real_open = connection.open_connection

        def open_counting(params):
            # Counting lookups is the only way to see a round trip saved
            # (the test driver has no RPC to observe), and a link to it
            # cannot break by itself.
            self.links.append(_Link(real_open(params)))
            return self.links[-1]

        self.patch(connection, 'open_connection', open_counting)
        self.connection = connection.Connection(
            connection.ConnectionParams(uri=base.TEST_URI),
            connection.ConnectionSettings())
        self.addCleanup(self.connection.close)
        self.domain = domain.Domain(self.connection, base.uuid_of(0),
                                    'node-0')

    def _raw(self, func):
        return self.connection.call(func, 'test inspection')

    def test_one_lookup_per_domain_and_link(self):
        for _ in range(3):
            self.assertEqual(domain.POWER_OFF, self.domain.power_state())
        self.assertEqual(1, self.links[0].lookups)
        self.domain.boot_device()
        self.assertEqual(1, self.links[0].lookups)
        # A broken link takes its handles with it.
        self.links[0].broken = True
        self.assertEqual(domain.POWER_OFF, self.domain.power_state())
        self.assertEqual(2, len(self.links))
        self.assertEqual(1, self.links[1].lookups)
        # And so does a closed (evicted, reset) connection.
        self.connection.close()
        self.assertEqual(domain.POWER_OFF, self.domain.power_state())
        self.assertEqual(3, len(self.links))
        self.assertEqual(1, self.links[2].lookups)

    def test_redefined_with_the_same_uuid_is_read_anew(self):
        self.assertEqual(domain.POWER_OFF, self.domain.power_state())
        xml = self._raw(lambda c: c.lookupByName('node-0').XMLDesc(
            base.INACTIVE))
        self._raw(lambda c: c.lookupByName('node-0').undefine())
        self.assertRaises(errors.DomainNotFound, self.domain.power_state)
        # Same UUID, another name and boot order, and running.
        xml = xml.replace('<name>node-0</name>', '<name>reborn</name>')
        xml = xml.replace("<boot dev='network'/>", '')
        self._raw(lambda c: c.defineXML(xml).create())
        self.assertEqual(domain.POWER_ON, self.domain.power_state())
        self.assertEqual(('hd', True), self.domain.boot_device())

    def test_undefine_event_drops_the_handle(self):
        self.assertEqual(domain.POWER_OFF, self.domain.power_state())
        self.assertIn(base.uuid_of(0), self.connection._handles)
        self._raw(lambda c: c.lookupByName('node-0').undefine())
        # The event arrives through the event loop thread.
        deadline = time.monotonic() + 30
        while (base.uuid_of(0) in self.connection._handles
               and time.monotonic() < deadline):
            time.sleep(0.01)
        self.assertNotIn(base.uuid_of(0), self.connection._handles)
        self.assertRaises(errors.DomainNotFound, self.domain.power_state)
