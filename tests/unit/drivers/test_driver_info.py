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

"""Parsing and validating a node's driver_info.

Whatever a user writes into driver_info, parsing it gives a DriverInfo or
an Ironic parameter exception naming the node, contacts nothing and never
echoes the SASL password.
"""

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from ironic.common import exception
from ironic.common import states
from ironic import objects
from oslo_utils import uuidutils

from ironic_libvirt.drivers import driver_info
from ironic_libvirt.drivers import resolution
from ironic_libvirt.virt import connection
from tests.unit import base

text = st.text(max_size=12)

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
            if (isinstance(password, str) and len(password) > 3
                    and password not in self._message_without_password(
                        node, values)):
                self.assertNotIn(password, str(exc))
            return
        self.assertIsInstance(info.params, connection.ConnectionParams)
        # Parsing contacted no hypervisor.
        self.assertEqual(0, len(resolution.RESOLVER.connections()))

    def _message_without_password(self, node, values):
        """The error text for the same values without sasl_password.

        Hypothesis draws strings from the code under test, so a password
        may be a word of the message ('libv') or another value: one the
        message holds without it is a coincidence, not a leak.
        """
        others = dict(values)
        del others['sasl_password']
        node = objects.Node(self.context, uuid=node.uuid, driver='libvirt',
                            driver_info=others)
        try:
            driver_info.parse_driver_info(node)
        except (exception.InvalidParameterValue,
                exception.MissingParameterValue) as exc:
            return str(exc)
        return ''


class ValidateTestCase(base.TestCase):

    def _validate(self, node):
        with self.task(node, shared=True) as task:
            task.driver.power.validate(task)

    def test_valid_by_domain_and_by_ports(self):
        self._validate(self.create_node(domain='node-0'))
        self._validate(self.create_node(macs=['52:54:00:00:00:00']))

    def test_validate_contacts_no_hypervisor(self):
        node = self.create_node(
            domain='node-0', libvirt_uri='qemu+tcp://192.0.2.1/system')
        self._validate(node)
        self.assertEqual(0, len(resolution.RESOLVER.connections()))

    def test_no_domain_and_no_ports(self):
        node = self.create_node()
        exc = self.assertRaises(exception.MissingParameterValue,
                                self._validate, node)
        self.assertIn(node.uuid, str(exc))
        self.assertIn('libvirt_domain', str(exc))

    def test_sasl_credentials_go_together(self):
        node = self.create_node(domain='node-0', sasl_username='ironic',
                                libvirt_uri='qemu+tcp://hv/system')
        exc = self.assertRaises(exception.MissingParameterValue,
                                self._validate, node)
        self.assertIn('sasl_password', str(exc))
        node = self.create_node(domain='node-0', sasl_password='s3cret',
                                libvirt_uri='qemu+tcp://hv/system')
        exc = self.assertRaises(exception.MissingParameterValue,
                                self._validate, node)
        self.assertIn('sasl_username', str(exc))
        self.assertNotIn('s3cret', str(exc))

    def test_refused_uri_names_the_parameter(self):
        node = self.create_node(
            domain='node-0',
            libvirt_uri='qemu+ssh://root@hv/system?command=/bin/sh')
        exc = self.assertRaises(exception.InvalidParameterValue,
                                self._validate, node)
        self.assertIn(node.uuid, str(exc))
        self.assertIn('command', str(exc))

    def test_test_driver_needs_configuration(self):
        self.config(allow_test_driver=False, group='libvirt')
        exc = self.assertRaises(exception.InvalidParameterValue,
                                self._validate,
                                self.create_node(domain='node-0'))
        self.assertIn('allow_test_driver', str(exc))

    def test_key_file_must_be_readable(self):
        node = self.create_node(
            domain='node-0', libvirt_uri='qemu+ssh://root@hv/system',
            ssh_key_filename='/nonexistent/id_rsa')
        exc = self.assertRaises(exception.InvalidParameterValue,
                                self._validate, node)
        self.assertIn('ssh_key_filename', str(exc))
        self.assertIn('/nonexistent/id_rsa', str(exc))

    def test_default_uri_comes_from_configuration(self):
        self.config(default_uri=base.TEST_URI, group='libvirt')
        node = self.create_node(domain='node-0')
        node.driver_info = {'libvirt_domain': 'node-0'}
        node.save()
        with self.task(node, shared=True) as task:
            self.assertEqual(states.POWER_OFF,
                             task.driver.power.get_power_state(task))
