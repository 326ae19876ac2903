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

"""Connections and their cache on libvirt's test driver (no Ironic).

Failures while opening are injected by wrapping a real ``test:///``
connection, since the test driver itself never fails to register a close
callback or to enable keepalive.
"""

import libvirt

from ironic_libvirt.drivers import resolution
from ironic_libvirt.virt import connection
from ironic_libvirt.virt import errors
from tests.unit import base


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
