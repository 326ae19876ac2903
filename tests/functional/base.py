# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""Functional test base: the driver's Ironic interfaces on a real libvirtd.

As in the unit tests, every test is an Ironic ``DbTestCase`` that acquires
nodes with ``task_manager``; here the hypervisor is the harness's private
libvirtd with QEMU (TCG), reached over the transport of the test class.
Results are checked through the tests' own libvirt connection
(``observer``), never through the driver.
"""

import itertools
import logging
import xml.etree.ElementTree as ET

import fixtures
import libvirt
import pytest

from tests import driver_case
from tests.harness import domains

INACTIVE = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
TRANSPORTS = ('unix', 'ssh', 'tcp', 'tls')
# Domains of each test class, by role; the decoy makes finding by MAC
# address a choice between domains.
ROLES = ('node', 'decoy')
# Numbers the tests' domains apart, names and MAC addresses alike.
_SERIALS = itertools.count()
# A SASL password that libvirtd refuses.
WRONG_PASSWORD = 'not-the-harness-password'


def driver_info(daemon, transport, port=None):
    """driver_info that reaches the harness's libvirtd over ``transport``.

    Key files and PKI directories go in keys of their own: the URI policy
    refuses them (and ``socket=``) in the URI.

    :param daemon: the harness's Libvirtd.
    :param transport: one of :data:`TRANSPORTS`.
    :param port: a TCP port to use instead of the listening one.
    """
    if transport == 'unix':
        return {'libvirt_uri': 'qemu:///system'}
    listening = {'ssh': daemon.sshd.port,
                 'tcp': daemon.tcp_port, 'tls': daemon.tls_port}
    host = '127.0.0.1:%d' % (port or listening[transport])
    if transport == 'ssh':
        return {'libvirt_uri': 'qemu+ssh://root@%s/system?no_verify=1'
                               '&no_tty=1' % host,
                'ssh_key_filename': str(daemon.sshd.keyfile)}
    if transport == 'tcp':
        return {'libvirt_uri': 'qemu+tcp://%s/system' % host,
                'sasl_username': daemon.sasl_username,
                'sasl_password': daemon.sasl_password}
    return {'libvirt_uri': 'qemu+tls://%s/system' % host,
            'tls_pki_path': str(daemon.tls.pki_dir)}


def boot_order(xml):
    """The ``<os><boot dev>`` order of a domain XML."""
    return [b.get('dev') for b in ET.fromstring(xml).iterfind('os/boot')]


@pytest.mark.usefixtures('hypervisor')
class FunctionalTestCase(driver_case.DriverTestCase):
    """Ironic DB test case with the libvirt driver on the harness's libvirtd.

    The ``hypervisor`` fixture sets ``daemon`` (the harness's Libvirtd),
    ``observer`` and ``disposer`` on the class. Every test gets domains of
    its own (see :data:`ROLES`), defined in a few milliseconds; a destroy
    takes 1-2 s here, so they are removed in the background while the
    next tests run.
    """

    transport = None

    def setUp(self):
        super().setUp()
        self.config(enabled_hardware_types=['libvirt'],
                    enabled_power_interfaces=['libvirt'],
                    enabled_management_interfaces=['libvirt'],
                    enabled_boot_interfaces=['fake', 'pxe'],
                    enabled_deploy_interfaces=['fake', 'direct'])
        self._enable_loggers()
        self.logs = self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))
        self._define_domains()

    @staticmethod
    def _enable_loggers():
        # Alembic's fileConfig, run by Ironic's database fixture, disables
        # every logger that existed before it; these tests read the logs.
        for name, logger in logging.root.manager.loggerDict.items():
            if (name.partition('.')[0] in ('ironic', 'ironic_libvirt')
                    and isinstance(logger, logging.Logger)):
                logger.disabled = False

    # The test's domains

    def domain_name(self, role='node'):
        return 'fn-%s-%d-%s' % (self.transport, self._serial, role)

    def mac(self, role='node'):
        return '52:54:00:%02x:%02x:%02x' % (TRANSPORTS.index(self.transport),
                                            self._serial % 256,
                                            ROLES.index(role))

    def _disk(self, name):
        return self.daemon.base_dir / ('%s.img' % name)

    def _define_domains(self):
        self._serial = next(_SERIALS)
        for role in ROLES:
            name = self.domain_name(role)
            self.observer.defineXML(domains.minimal_domain_xml(
                name, self.mac(role),
                disk=domains.create_disk(self._disk(name))))
            self.addCleanup(self.disposer.submit, self._dispose, name)

    def _dispose(self, name):
        dom = self.observer.lookupByName(name)
        if dom.isActive():
            dom.destroy()
        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
        self._disk(name).unlink(missing_ok=True)

    # Ironic side

    def create_node(self, role='node', macs=(), **info):
        """A node of this class's transport, with a port per MAC.

        :param role: the domain named in driver_info libvirt_domain; None
            for none.
        :param info: driver_info entries to add or replace.
        """
        values = driver_info(self.daemon, self.transport)
        if role is not None:
            values['libvirt_domain'] = self.domain_name(role)
        values.update(info)
        return self.add_node(values, macs)

    # Observations, through the tests' own connection

    def state(self, role='node'):
        return self.observer.lookupByName(self.domain_name(role)).state()[0]

    def xml(self, role='node', flags=INACTIVE):
        return self.observer.lookupByName(self.domain_name(role)).XMLDesc(
            flags)

    def qemu_pid(self, role='node'):
        """The PID of the domain's QEMU process, as libvirtd records it."""
        pid_file = self.daemon.run_dir / 'qemu' / (
            '%s.pid' % self.domain_name(role))
        return int(pid_file.read_text())

    def assert_no_secret(self, text):
        """Neither text nor anything logged holds a SASL password."""
        for secret in (self.daemon.sasl_password, WRONG_PASSWORD):
            self.assertNotIn(secret, text)
            self.assertNotIn(secret, self.logs.output)
