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

"""Faults a conductor meets, on the real libvirtd over qemu+tcp with SASL.

A restarted daemon, a hung (SIGSTOPped) daemon, a domain undefined behind
Ironic's back, a conductor restart, concurrent edits of one domain, and a
wrong password that must not leak.
"""

import threading
import xml.etree.ElementTree as ET

from ironic.common import exception
from ironic.common import states
from ironic.conductor import utils as cond_utils
import libvirt
import pytest

from ironic_libvirt.drivers import resolution
from tests import driver_case
from tests.functional import base
from tests.harness import libvirtd as harness_libvirtd
from tests import races


@pytest.fixture(scope='class')
def own_daemon(request, hypervisor):
    """A libvirtd of the class's own: these tests restart and freeze it."""
    with harness_libvirtd.Libvirtd(tcp=True, tls=True, ssh=True) as daemon:
        request.cls.daemon = daemon
        request.cls.observer = libvirt.open(daemon.uri_unix)
        yield daemon


@pytest.mark.usefixtures('own_daemon')
class FaultsTestCase(base.FunctionalTestCase):

    transport = 'tcp'
    # Restarting libvirtd runs a process, which Ironic's test base forbids
    # by default.
    block_execute = False

    def setUp(self):
        # A test that restarts or freezes the daemon breaks the class's
        # observer connection; every test starts with a working one.
        if not self.observer.isAlive():
            type(self).observer = libvirt.open(self.daemon.uri_unix)
        super().setUp()

    def _power_state(self, node):
        with self.task(node, shared=True) as task:
            return task.driver.power.get_power_state(task)

    def _new_connection_settings(self, **libvirt_opts):
        """Apply [libvirt] options that the connection cache reads once."""
        self.config(group='libvirt', **libvirt_opts)
        # The cache is built from the configuration of its first use; the
        # options are restored after the test, and so must the cache be.
        driver_case.reset_driver_state()
        self.addCleanup(driver_case.reset_driver_state)

    def test_libvirtd_restarts_during_sweeps(self):
        nodes = [self.create_node(role) for role in base.ROLES] * 3
        restarts = 0
        for sweep in range(3):
            for index, node in enumerate(nodes):
                if index == len(nodes) // 2:
                    self.daemon.restart_libvirtd()
                    restarts += 1
                self.assertEqual(states.POWER_OFF, self._power_state(node))
        self.assertEqual(3, restarts)
        # One connection, opened again after each restart: whether the
        # close callback or a failed call noticed the break first.
        self.assertEqual(1 + restarts, self.logs.output.count(
            'Opened a connection to %s' % base.driver_info(
                self.daemon, 'tcp')['libvirt_uri']))

    def test_hung_hypervisor_fails_within_the_bound(self):
        # open_timeout bounds the open of a new connection to the hung
        # daemon; it is also the bound of the first, healthy open, which
        # a busy machine can stretch past a few seconds.
        self._new_connection_settings(keepalive_interval=1,
                                      keepalive_count=2, open_timeout=10)
        self.config(allow_test_driver=True, group='libvirt')
        hung = self.create_node()
        elsewhere = self.create_node(libvirt_uri='test:///default',
                                     libvirt_domain='test')
        other_daemon_node = self.create_node(sasl_username='nobody',
                                             sasl_password='unused')
        self.assertEqual(states.POWER_OFF, self._power_state(hung))
        self.daemon.freeze()
        self.addCleanup(self.daemon.thaw)
        outcome = {}

        def poll_hung():
            try:
                self._power_state(hung)
            except exception.IronicException as exc:
                outcome['error'] = str(exc)

        poller = threading.Thread(target=poll_hung)
        poller.start()
        # Nodes behind other hypervisors answer while that call hangs.
        answered = 0
        while poller.is_alive() and answered < 200:
            self.assertEqual(states.POWER_ON, self._power_state(elsewhere))
            answered += 1
        poller.join(30)
        self.assertFalse(poller.is_alive(), 'the hung call was not bounded')
        self.assertGreater(answered, 0)
        self.assertIn(hung.uuid, outcome['error'])
        self.assertIn('cannot use the hypervisor', outcome['error'])
        # A new connection to the hung daemon fails after open_timeout.
        exc = self.assertRaises(exception.TemporaryFailure,
                                self._power_state, other_daemon_node)
        self.assertIn('open_timeout', str(exc))
        self.daemon.thaw()
        self.assertEqual(states.POWER_OFF, self._power_state(hung))

    def test_domain_undefined_behind_ironics_back(self):
        node = self.create_node(role=None, macs=[self.mac()])
        with self.task(node) as task:
            self.assertEqual(states.POWER_OFF,
                             task.driver.power.get_power_state(task))
            self.assertIn(resolution.RESOLVED_KEY,
                          task.node.driver_internal_info)
            self.observer.lookupByName(self.domain_name()).undefine()
            exc = self.assertRaises(exception.InvalidParameterValue,
                                    task.driver.power.get_power_state, task)
            self.assertIn(self.mac(), str(exc))
            self.assertNotIn(resolution.RESOLVED_KEY,
                             task.node.driver_internal_info)

    def test_one_time_boot_survives_a_conductor_restart(self):
        node = self.create_node()
        with self.task(node) as task:
            task.driver.management.set_boot_device(task, 'cdrom',
                                                   persistent=False)
        # A conductor restart: every in-memory state of the driver is gone.
        driver_case.reset_driver_state()
        with self.task(node) as task:
            self.assertEqual({'boot_device': 'cdrom', 'persistent': False},
                             task.driver.management.get_boot_device(task))
            task.driver.power.set_power_state(task, states.POWER_ON)
        self.assertEqual(['cdrom', 'network'],
                         base.boot_order(self.xml(flags=0)))
        self.assertEqual(['network'], base.boot_order(self.xml()))
        self.assertNotIn('boot-restore', self.xml())

    def test_concurrent_edits_lose_no_update(self):
        before = ET.fromstring(self.xml())
        node = self.create_node()
        with self.task(node) as task:
            domain = resolution.with_domain(task, 'racing', lambda d: d)
        lost = races.race_edits(
            domain, lambda: ET.fromstring(self.xml()), rounds=40)
        self.assertEqual([], lost)
        after = ET.fromstring(self.xml())
        for tag in ('name', 'uuid', 'memory', 'vcpu', 'devices'):
            self.assertEqual(ET.tostring(before.find(tag)),
                             ET.tostring(after.find(tag)), tag)

    def test_wrong_password_leaks_nowhere(self):
        node = self.create_node(sasl_password=base.WRONG_PASSWORD)
        with self.task(node) as task:
            self.assertRaises(exception.IronicException,
                              cond_utils.node_power_action, task,
                              states.POWER_ON)
        node.refresh()
        self.assertIn('sasl_username and sasl_password', node.last_error)
        self.assert_no_secret(node.last_error)
        self.assertEqual(libvirt.VIR_DOMAIN_SHUTOFF, self.state())
