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

"""Property-based tests: hostile driver_info and URIs.

Whatever a user writes into driver_info, parsing it gives a DriverInfo or
an Ironic parameter exception, contacts nothing, and never admits a URI
that makes libvirt run a program or open a path the user picks. The
oracle parses query strings the way libvirt does (``&`` or ``;`` between
parameters, percent-escapes decoded), independently of the driver.
"""

import urllib.parse

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from ironic.common import exception
from ironic import objects
from oslo_utils import uuidutils

from ironic_libvirt.drivers import driver_info
from ironic_libvirt.drivers import resolution
from ironic_libvirt.virt import connection
from ironic_libvirt.virt import errors
from tests.unit import base

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


driver_info_values = st.one_of(
    st.none(), text, st.integers(), st.booleans(), st.floats(),
    st.lists(text, max_size=2), st.dictionaries(text, text, max_size=2),
    st.sampled_from(['qemu:///system', 'qemu+ssh://root@hv/system',
                     'qemu+tcp://hv/system?command=/bin/sh',
                     'test:///default', '/etc/shadow', '', '  ']))


class DriverInfoFuzzTestCase(base.TestCase):

    @settings(max_examples=2000, deadline=None)
    @given(st.dictionaries(
        st.one_of(st.sampled_from(sorted(driver_info.OPTIONAL_PROPERTIES)),
                  text),
        driver_info_values, max_size=7))
    def test_only_parameter_errors_come_out(self, values):
        node = objects.Node(self.context, uuid=uuidutils.generate_uuid(),
                            driver='libvirt', driver_info=values)
        try:
            info = driver_info.parse_driver_info(node)
        except (exception.InvalidParameterValue,
                exception.MissingParameterValue) as exc:
            self.assertIn(node.uuid, str(exc))
            password = values.get('sasl_password')
            if isinstance(password, str) and len(password) > 3:
                self.assertNotIn(password, str(exc))
            return
        self.assertIsInstance(info.params, connection.ConnectionParams)
        # Parsing contacted no hypervisor.
        self.assertEqual(0, len(resolution.RESOLVER.connections()))
