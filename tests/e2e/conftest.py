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

"""Fixtures for end-to-end tests against a real standalone Ironic.

libvirt's test driver keeps its state per process, so tests that check
what Ironic did from the outside use real QEMU domains on the harness's
private libvirtd, which the Ironic process reaches over qemu+tcp with SASL
(the driver refuses the ``socket=`` URI of the private unix socket).
"""

import contextlib
import importlib.metadata
import os
import sys
import time
import urllib.error
import uuid
import warnings

import libvirt
import pytest

from tests.harness import domains as harness_domains
from tests.harness import ironic as ironic_harness
from tests.harness import libvirtd as harness_libvirtd
from tests.harness import system
from tests.harness import web

PROJECT_HARDWARE_TYPES = [
    'libvirt', 'pxe_libvirt_agent', 'pxe_libvirt_iscsi', 'fake_libvirt_fake',
]
PROJECT_ENTRY_POINTS = {
    'ironic.hardware.types': PROJECT_HARDWARE_TYPES,
    'ironic.hardware.interfaces.power': ['libvirt'],
    'ironic.hardware.interfaces.management': ['libvirt'],
    'ironic.hardware.interfaces.inspect': ['libvirt'],
    'ironic.hardware.interfaces.console': ['libvirt-socat',
                                           'libvirt-graphical'],
    'ironic.hardware.interfaces.bios': ['libvirt'],
}
# Seconds between Ironic's power state syncs: small, for the sync test.
SYNC_INTERVAL = 2
# Storage pool for virtual media on the harness's libvirtd, whose
# /var/lib/libvirt is a directory of its own.
MEDIA_POOL = 'ironic-e2e-media'
MEDIA_POOL_PATH = '/var/lib/libvirt/images/ironic-e2e-media'


def wait(what, predicate, timeout=30):
    """Poll ``predicate`` until it returns something true; return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        assert time.monotonic() < deadline, 'no %s after %ss' % (what,
                                                                 timeout)
        time.sleep(0.2)


def _project_drivers_missing():
    """Why this project's drivers cannot be loaded, or None if they can."""
    for group, names in PROJECT_ENTRY_POINTS.items():
        found = {ep.name: ep
                 for ep in importlib.metadata.entry_points(group=group)}
        for name in names:
            if name not in found:
                return 'entry point %s:%s is not installed' % (group, name)
            try:
                with warnings.catch_warnings():
                    # Ironic's imports warn about eventlet.
                    warnings.simplefilter('ignore')
                    found[name].load()
            except Exception as exc:
                return 'entry point %s:%s does not load: %r' % (
                    group, name, exc)
    return None


PROJECT_DRIVERS_MISSING = _project_drivers_missing()


def pytest_report_header(config):
    if PROJECT_DRIVERS_MISSING:
        return ('e2e: ironic-libvirt drivers unavailable (%s); using '
                'fake-hardware only' % PROJECT_DRIVERS_MISSING)
    return 'e2e: ironic-libvirt hardware types: %s' % ', '.join(
        PROJECT_HARDWARE_TYPES)


def _in_ci():
    return os.environ.get('CI', '').lower() not in ('', '0', 'false', 'no')


def skip_or_fail(reason):
    """Skip the test, or fail it in CI, where everything must run."""
    if _in_ci():
        pytest.fail('CI must run the end-to-end tests, but: %s' % reason,
                    pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope='session')
def ironic(tmp_path_factory):
    """A running IronicService with this project's drivers if loadable.

    ``fake-hardware`` with fake power and management is always enabled,
    and so is libvirt's test driver ([libvirt] allow_test_driver), the
    ``libvirt`` inspect and bios and ``libvirt-socat`` console interfaces.
    """
    bin_dir = os.path.dirname(sys.executable)
    if not os.path.exists(os.path.join(bin_dir, 'ironic')):
        skip_or_fail('no ironic in %s: run pytest from the Ironic venv'
                     % bin_dir)
    base_dir = tmp_path_factory.mktemp('ironic')
    if PROJECT_DRIVERS_MISSING:
        kwargs = {}
    else:
        (base_dir / 'console').mkdir()
        console_port = system.free_port()
        kwargs = {
            'enabled_hardware_types': PROJECT_HARDWARE_TYPES + [
                'fake-hardware'],
            'enabled_power_interfaces': ['libvirt', 'fake'],
            'enabled_management_interfaces': ['libvirt', 'fake'],
            'config': {
                'DEFAULT': {
                    'enabled_inspect_interfaces': [
                        'libvirt', 'no-inspect', 'fake'],
                    'enabled_console_interfaces': [
                        'libvirt-socat', 'libvirt-graphical', 'no-console',
                        'fake'],
                    'enabled_boot_interfaces': [
                        'fake', 'pxe', 'ipxe', 'libvirt-vmedia'],
                    'enabled_bios_interfaces': [
                        'libvirt', 'no-bios', 'fake'],
                },
                'libvirt': {'allow_test_driver': True,
                            'media_pool': MEDIA_POOL,
                            'media_pool_path': MEDIA_POOL_PATH},
                # socat consoles on 127.0.0.1, from a range of free ports.
                'console': {'socat_address': '127.0.0.1',
                            'port_range': '%d:%d' % (console_port,
                                                     console_port + 20),
                            'terminal_pid_dir': str(base_dir / 'console')},
                # Graphical console URLs name the ironic-novncproxy that
                # test_graphical_console starts (vnc_lite.html connects at
                # once; Debian's vnc_auto.html is vnc.html, which waits
                # for a click).
                'vnc': {'public_url': 'http://127.0.0.1:%d/vnc_lite.html'
                                      % system.free_port()},
                # Record power changes made behind Ironic's back instead
                # of undoing them (Ironic's default), so tests can see them.
                'conductor': {'force_power_state_during_sync': False},
            },
        }
    # Ironic publishes virtual media images in [deploy] http_root for a
    # web server to serve at [deploy] http_url.
    (base_dir / 'httpboot').mkdir()
    with web.serving(base_dir / 'httpboot') as http_url:
        kwargs.setdefault('config', {})['deploy'] = {'http_url': http_url}
        with ironic_harness.IronicService(
                base_dir, bin_dir=bin_dir,
                sync_power_state_interval=SYNC_INTERVAL,
                **kwargs) as service:
            yield service


@pytest.fixture(scope='session')
def libvirt_ironic(ironic):
    """The Ironic service, when it has this project's drivers."""
    if PROJECT_DRIVERS_MISSING:
        skip_or_fail('ironic-libvirt drivers unavailable: %s'
                     % PROJECT_DRIVERS_MISSING)
    return ironic


@pytest.fixture(scope='session')
def libvirtd():
    """A private libvirtd with QEMU, listening on qemu+tcp with SASL."""
    reason = system.skip_reason()
    if reason is not None:
        skip_or_fail(reason)
    with harness_libvirtd.Libvirtd(tcp=True) as daemon:
        yield daemon


class QemuDomains:
    """Creates real QEMU domains and the driver_info that reaches them."""

    def __init__(self, daemon):
        self.daemon = daemon
        self._conn = libvirt.open(daemon.uri_unix)
        self._count = 0

    def create(self):
        """Define a shut off domain with a disk; return its libvirt object.

        Its name is unique, its first MAC is ``domain.mac``.
        """
        self._count += 1
        name = 'e2e-%s' % uuid.uuid4().hex[:8]
        disk = harness_domains.create_disk(
            self.daemon.base_dir / ('%s.img' % name))
        mac = '52:54:00:e2:%02x:%02x' % divmod(self._count, 256)
        domain = self._conn.defineXML(harness_domains.minimal_domain_xml(
            name, mac, uuid=str(uuid.uuid4()), disk=disk))
        domain.mac = mac
        return domain

    def driver_info(self, domain=None):
        """driver_info for qemu+tcp with SASL, naming ``domain`` if given."""
        info = {'libvirt_uri': self.daemon.uri_tcp,
                'sasl_username': self.daemon.sasl_username,
                'sasl_password': self.daemon.sasl_password}
        if domain is not None:
            info['libvirt_domain'] = domain.name()
        return info

    def state(self, domain):
        """'running', 'shut off', ... as virsh says it."""
        return self.daemon.virsh('domstate', domain.name()).strip()

    def domain_id(self, domain):
        """The running domain's ID: a new one for every start."""
        return int(self.daemon.virsh('domid', domain.name()))

    def close(self):
        self._conn.close()


@pytest.fixture
def qemu(libvirt_ironic, libvirtd, nodes):
    """Real QEMU domains for one test; removed after the test's nodes."""
    made = QemuDomains(libvirtd)
    yield made
    made.close()
    nodes.delete_all()
    libvirtd.cleanup_domains()


class Nodes:
    """Ironic nodes of one test.

    Steps a scenario is about run ``baremetal`` (``cli=True``, about 1.5 s
    a call); set-up steps and polling use the API.
    """

    def __init__(self, service):
        self.ironic = service
        self.created = []

    def cli(self, *args, json=True):
        """``baremetal ARGS`` against the service."""
        return self.ironic.baremetal(*args, json=json)

    def api(self, node):
        """The node as the API returns it."""
        return self.ironic.request('GET', '/v1/nodes/%s' % node)

    def create(self, driver, driver_info, cli=False):
        """Enroll a node; return it as created."""
        name = 'e2e-%s' % uuid.uuid4().hex[:8]
        if cli:
            args = ['node', 'create', '--driver', driver, '--name', name]
            for key, value in driver_info.items():
                args += ['--driver-info', '%s=%s' % (key, value)]
            node = self.cli(*args)
        else:
            node = self.ironic.request('POST', '/v1/nodes', {
                'driver': driver, 'name': name, 'driver_info': driver_info})
        self.created.append(node['uuid'])
        return node

    def validate(self, node):
        """``baremetal node validate``: {interface: (result, reason)}."""
        return {row['Interface']: (row['Result'], row['Reason'])
                for row in self.cli('node', 'validate', node)}

    def manage(self, node, cli=False):
        """Move the node to manageable; return it."""
        if cli:
            self.cli('node', 'manage', node, '--wait', '60', json=False)
            return self.api(node)
        self.ironic.request('PUT', '/v1/nodes/%s/states/provision' % node,
                            {'target': 'manage'})
        return self._wait(node, 'provision state manageable',
                          lambda n: n['provision_state'] != 'verifying'
                          and n['target_provision_state'] is None,
                          lambda n: n['provision_state'] == 'manageable')

    def power(self, node, action, cli=False):
        """Power ``on``, ``off`` or ``reboot``; wait for the power state."""
        if cli and action == 'reboot':
            self.cli('node', 'reboot', node, json=False)
        elif cli:
            self.cli('node', 'power', action, node, json=False)
        else:
            target = 'rebooting' if action == 'reboot' else 'power ' + action
            self.ironic.request('PUT', '/v1/nodes/%s/states/power' % node,
                                {'target': target})
        state = 'power on' if action == 'reboot' else 'power ' + action
        return self._wait(node, state,
                          lambda n: n['target_power_state'] is None,
                          lambda n: n['power_state'] == state)

    def console_shown(self, node):
        """``baremetal node console show``."""
        return self.cli('node', 'console', 'show', node)

    @contextlib.contextmanager
    def console_enabled(self, node, timeout=60):
        """``console enable``; yield the console info once shown.

        On the way out, ``console disable`` and wait until the console is
        shown disabled, with no info left.
        """
        def info():
            shown = self.console_shown(node)
            return shown['console_enabled'] and shown['console_info']

        self.cli('node', 'console', 'enable', node, json=False)
        try:
            yield wait('enabled console', info, timeout)
        finally:
            self.cli('node', 'console', 'disable', node, json=False)
        wait('disabled console',
             lambda: not self.console_shown(node)['console_enabled'], timeout)
        assert self.console_shown(node)['console_info'] is None

    def _wait(self, node, what, done, success, timeout=60):
        """Poll until ``done(node)``; fail unless ``success(node)``."""
        deadline = time.monotonic() + timeout
        while True:
            current = self.api(node)
            if done(current) and success(current):
                return current
            if done(current) and current['last_error']:
                raise AssertionError('node %s: not %s: %s'
                                     % (node, what, current['last_error']))
            if time.monotonic() > deadline:
                raise AssertionError('node %s: not %s after %ss: %s'
                                     % (node, what, timeout, current))
            time.sleep(0.1)

    def delete_all(self):
        """Delete the nodes created so far, waiting out node locks."""
        while self.created:
            node = self.created.pop()
            deadline = time.monotonic() + 30
            while True:
                try:
                    self.ironic.request('DELETE', '/v1/nodes/%s' % node)
                    break
                except urllib.error.HTTPError as exc:
                    # 409: locked by a power action or the power sync.
                    if exc.code != 409 or time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)


@pytest.fixture
def nodes(libvirt_ironic):
    """A :class:`Nodes` whose nodes are deleted after the test."""
    made = Nodes(libvirt_ironic)
    yield made
    made.delete_all()
