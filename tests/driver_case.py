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

"""Ironic's DB test case, for the unit and functional tests of the driver."""

import warnings

import fixtures
from ironic.conductor import task_manager
from ironic.tests.unit.db import base as db_base
from ironic.tests.unit.objects import utils as obj_utils
from oslo_utils import uuidutils

from ironic_libvirt.drivers import resolution


# Seconds a test may take before it fails as hung.
TEST_TIMEOUT = 600


def reset_driver_state():
    """Forget what the driver keeps in the process, as a restart would."""
    resolution.RESOLVER.reset()


class DriverTestCase(db_base.DbTestCase):
    """Nodes in Ironic's test database, acquired with its task manager."""

    def setUp(self):
        super().setUp()
        # Ironic's test base arms a 60 s SIGALRM without a handler, which
        # kills the whole pytest process: a functional test on real QEMU
        # can take longer on a busy machine. This handler and bound fail
        # only the test that hangs (one alarm per process: this replaces
        # Ironic's, and both are disarmed after the test).
        self.useFixture(fixtures.Timeout(TEST_TIMEOUT, gentle=True))
        self.addCleanup(reset_driver_state)
        # Ironic's test fixture shows every DeprecationWarning once, ahead
        # of pytest.ini's filters. eventlet (imported by futurist, never
        # used: Ironic's tests run on threads) warns at each fork, and the
        # subprocesses that Ironic's image code starts fork: nothing this
        # driver can act on. Ironic's fixture restores the filters after
        # the test.
        warnings.filterwarnings('ignore', message=r'Using fork\(\) is a bad',
                                category=DeprecationWarning,
                                module='eventlet')

    def _clear_attrs(self):
        # pytest binds the test method on the instance while it runs and
        # deletes it afterwards; Ironic's clean-up must leave it alone.
        method = self.__dict__.get(self._testMethodName)
        super()._clear_attrs()
        if method is not None:
            self.__dict__[self._testMethodName] = method

    def add_node(self, driver_info, macs=(), driver='libvirt'):
        """A node with ``driver_info`` and a port per MAC address."""
        node = obj_utils.create_test_node(
            self.context, uuid=uuidutils.generate_uuid(), driver=driver,
            driver_info=driver_info)
        for mac in macs:
            obj_utils.create_test_port(self.context, node_id=node.id,
                                       uuid=uuidutils.generate_uuid(),
                                       address=mac)
        return node

    def task(self, node, shared=False):
        return task_manager.acquire(self.context, node.uuid, shared=shared)
