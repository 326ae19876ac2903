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

"""Several conductors, a conductor group per hypervisor, and takeover.

One ironic-api and three ironic-conductor processes on PostgreSQL with
JSON-RPC; two private libvirtds are the hypervisors ``hv1`` (served by two
conductors) and ``hv2`` (one conductor). 20 shut off QEMU domains on each
are nodes of the matching conductor group. The tests run in file order and
share the fleet: each leaves every conductor and hypervisor running.
"""

import collections
import json
import os
import tempfile
import time
import xml.etree.ElementTree as ET

import libvirt
import pytest

from tests.e2e import conftest
from tests.harness import domains as harness_domains
from tests.harness import ironic as ironic_harness
from tests.harness import ironic_cluster
from tests.harness import libvirtd as harness_libvirtd
from tests.harness import postgres
from tests.harness import system

NODES_PER_HYPERVISOR = 20
CONDUCTOR_GROUPS = ('hv1', 'hv1', 'hv2')
# Small so that takeover and the sync happen in seconds. A conductor is
# dead HEARTBEAT_TIMEOUT s after its last heartbeat, which was at most
# HEARTBEAT_INTERVAL s before it died; Ironic's hash rings (the API's,
# which fills the nodes' ``conductor`` field, and each conductor's) see it
# at their next refresh, at most HASH_RING_RESET_INTERVAL s later.
HEARTBEAT_INTERVAL = 2
HEARTBEAT_TIMEOUT = 10
HASH_RING_RESET_INTERVAL = 3
SYNC_INTERVAL = 3
TAKEOVER_BOUND = HEARTBEAT_INTERVAL + HEARTBEAT_TIMEOUT + (
    HASH_RING_RESET_INTERVAL)
# Waits are for events; these only bound them on a busy shared machine.
SLACK = 90


def _enabled():
    return os.environ.get('IRONIC_LIBVIRT_E2E_SCALE', '').lower() in (
        '1', 'true', 'yes')


pytestmark = pytest.mark.skipif(
    not _enabled(),
    reason='multi-conductor tests run with IRONIC_LIBVIRT_E2E_SCALE=1 '
           '(tox -e e2e-scale)')


class Fleet:
    """The cluster, the two hypervisors and the 40 nodes."""

    def __init__(self, cluster, hypervisors):
        self.cluster = cluster
        self.hypervisors = hypervisors
        self.conns = {group: libvirt.open(daemon.uri_unix)
                      for group, daemon in hypervisors.items()}
        # group -> [node name]; node names are their domains' names.
        self.nodes = {group: [] for group in hypervisors}

    def conductors(self, group):
        return [c for c in self.cluster.conductors if c.group == group]

    def node(self, name):
        return self.cluster.request('GET', '/v1/nodes/%s' % name)

    def all_nodes(self):
        """{name: node} with the fields these tests read."""
        nodes = self.cluster.request(
            'GET', '/v1/nodes/detail?limit=1000')['nodes']
        return {n['name']: n for n in nodes}

    def domain(self, name):
        return self.conns[name.split('-')[0]].lookupByName(name)

    def cli(self, *args, json=True):
        return self.cluster.baremetal(*args, json=json)

    def power(self, name, action):
        """``baremetal node power ACTION NAME``; wait for the new state."""
        self.cli('node', 'power', action, name, json=False)
        self.wait_nodes('power %s' % action,
                        lambda n: n['target_power_state'] is None
                        and n['power_state'] == 'power ' + action,
                        [name], SLACK)

    def wait_nodes(self, what, predicate, names, timeout):
        """Wait until ``predicate(node)`` holds for every node named."""
        def check():
            nodes = self.all_nodes()
            return all(predicate(nodes[name]) for name in names) and nodes
        try:
            return system.wait_for(check, timeout, what, interval=0.5)
        except system.HarnessError:
            nodes = self.all_nodes()
            raise AssertionError('%s: not reached by %s' % (what, {
                name: _summary(nodes[name]) for name in names
                if not predicate(nodes[name])}))

    def conductor_of(self, pid):
        for conductor in self.cluster.conductors:
            if pid in conductor.pids():
                return conductor.name
        return None

    def connections(self):
        """Connections as libvirtd sees them.

        :returns: a Counter of (conductor name, hypervisor group): libvirtd's
            TCP clients mapped to the processes that hold them.
        """
        counts = collections.Counter()
        for group, daemon in self.hypervisors.items():
            for port in daemon.tcp_client_ports():
                pid = system.tcp_client_pid(port, daemon.tcp_port)
                counts[(self.conductor_of(pid), group)] += 1
        return counts

    def expected_connections(self, conductors=None):
        """What :meth:`connections` should say.

        One cached connection per conductor to the hypervisor of its
        group, none to any other.
        """
        return collections.Counter({
            (c.name, c.group): 1
            for c in conductors or self.cluster.conductors})

    def close(self):
        for conn in self.conns.values():
            conn.close()


def _summary(node):
    return {key: node[key] for key in (
        'conductor', 'conductor_group', 'power_state', 'maintenance',
        'fault', 'last_error')}


def _boot_dev(domain, flags=0):
    return ET.fromstring(domain.XMLDesc(flags)).find('os/boot').get('dev')


def _state(domain):
    return domain.state()[0]


def _check_prerequisites():
    if conftest.PROJECT_DRIVERS_MISSING:
        conftest.skip_or_fail('ironic-libvirt drivers unavailable: %s'
                              % conftest.PROJECT_DRIVERS_MISSING)
    reason = system.skip_reason()
    if reason is not None:
        conftest.skip_or_fail(reason)
    try:
        postgres.binary_dir()
        import psycopg2  # noqa: F401  (Ironic's database driver)
    except (system.HarnessError, ImportError) as exc:
        conftest.skip_or_fail(str(exc))


def _define_domains(daemon, group):
    """20 shut off domains ``GROUP-NN``; MACs unique across hypervisors."""
    conn = libvirt.open(daemon.uri_unix)
    try:
        names = []
        for index in range(NODES_PER_HYPERVISOR):
            name = '%s-%02d' % (group, index)
            mac = '52:54:00:5c:%02x:%02x' % (int(group[-1]), index)
            # A disk, so that "disk" is a boot device the domain has.
            disk = harness_domains.create_disk(
                daemon.base_dir / ('%s.img' % name), size_mib=1)
            conn.defineXML(harness_domains.minimal_domain_xml(name, mac,
                                                              disk=disk))
            names.append(name)
        return names
    finally:
        conn.close()


def _enroll(fleet, workdir):
    """Enroll every domain as a node of its hypervisor's group, manage all.

    The first node of each group through ``baremetal node create
    --conductor-group``, the others in one ``baremetal create FILE``.
    """
    bulk = []
    for group, daemon in fleet.hypervisors.items():
        info = {'libvirt_uri': daemon.uri_tcp,
                'sasl_username': daemon.sasl_username,
                'sasl_password': daemon.sasl_password}
        for position, name in enumerate(_define_domains(daemon, group)):
            fleet.nodes[group].append(name)
            node_info = dict(info, libvirt_domain=name)
            if position:
                bulk.append({'name': name, 'driver': 'libvirt',
                             'conductor_group': group,
                             'driver_info': node_info})
                continue
            args = ['node', 'create', '--driver', 'libvirt', '--name', name,
                    '--conductor-group', group]
            for key, value in node_info.items():
                args += ['--driver-info', '%s=%s' % (key, value)]
            fleet.cli(*args)
    nodes_file = os.path.join(workdir, 'nodes.json')
    with open(nodes_file, 'w') as out:
        json.dump({'nodes': bulk}, out)
    fleet.cli('create', nodes_file, json=False)
    names = [n for group in fleet.nodes.values() for n in group]
    for name in names:
        fleet.cluster.request('PUT', '/v1/nodes/%s/states/provision' % name,
                              {'target': 'manage'})
    fleet.wait_nodes('manageable',
                     lambda n: n['provision_state'] == 'manageable'
                     and n['power_state'] == 'power off', names, 120)


@pytest.fixture(scope='module')
def fleet(tmp_path_factory):
    _check_prerequisites()
    base = tmp_path_factory.mktemp('conductors')
    started = time.monotonic()

    def stage(what):
        print('stage: %s (%.0f s)' % (what, time.monotonic() - started))

    with postgres.Postgres() as database, \
            harness_libvirtd.Libvirtd(tcp=True) as hv1, \
            harness_libvirtd.Libvirtd(tcp=True) as hv2:
        stage('postgres and two libvirtds')
        cluster = ironic_cluster.IronicCluster(
            base, database.url, CONDUCTOR_GROUPS,
            enabled_hardware_types=['libvirt'],
            enabled_power_interfaces=['libvirt'],
            enabled_management_interfaces=['libvirt'],
            sync_power_state_interval=SYNC_INTERVAL,
            start_timeout=180, config={
                'DEFAULT': {
                    'hash_ring_reset_interval': HASH_RING_RESET_INTERVAL},
                'conductor': {
                    'heartbeat_interval': HEARTBEAT_INTERVAL,
                    'heartbeat_timeout': HEARTBEAT_TIMEOUT,
                    # Record power changes made behind Ironic's back, so
                    # that a test can see the sync run.
                    'force_power_state_during_sync': False,
                    'power_state_sync_max_retries': 1,
                    'power_failure_recovery_interval': SYNC_INTERVAL,
                    # Releases the locks of dead conductors.
                    'check_provision_state_interval': SYNC_INTERVAL,
                },
            })
        with cluster:
            stage('ironic-api and %d conductors' % len(CONDUCTOR_GROUPS))
            fleet = Fleet(cluster, {'hv1': hv1, 'hv2': hv2})
            try:
                with tempfile.TemporaryDirectory() as workdir:
                    _enroll(fleet, workdir)
                stage('%d nodes enrolled and managed'
                      % (2 * NODES_PER_HYPERVISOR))
                yield fleet
            finally:
                fleet.close()


def test_nodes_served_by_their_groups_conductors(fleet):
    # Not "--fields conductor": Ironic 39 answers that with HTTP 500, as
    # the field is computed, not a database column.
    listed = fleet.cli('node', 'list', '--long')
    assert len(listed) == 2 * NODES_PER_HYPERVISOR
    served = collections.defaultdict(set)
    for node in listed:
        group = node['conductor_group']
        assert node['name'].startswith(group + '-'), node
        assert node['driver_info']['libvirt_uri'] == (
            fleet.hypervisors[group].uri_tcp)
        hosts = {c.host for c in fleet.conductors(group)}
        assert node['conductor'] in hosts, node
        served[group].add(node['conductor'])
    # The hash ring spreads hv1's nodes over both of its conductors.
    assert served['hv1'] == {c.host for c in fleet.conductors('hv1')}


def test_boot_device_reaches_each_nodes_domain(fleet):
    names = fleet.nodes['hv1'] + fleet.nodes['hv2']
    wanted = {name: ('disk', 'hd') if i % 2 else ('cdrom', 'cdrom')
              for i, name in enumerate(names)}
    # Through the CLI for one node per group, the API for the rest.
    for name in (fleet.nodes['hv1'][1], fleet.nodes['hv2'][1]):
        fleet.cli('node', 'boot', 'device', 'set', '--persistent', name,
                  wanted[name][0], json=False)
    for name in names:
        if name not in (fleet.nodes['hv1'][1], fleet.nodes['hv2'][1]):
            fleet.cluster.request(
                'PUT', '/v1/nodes/%s/management/boot_device' % name,
                {'boot_device': wanted[name][0], 'persistent': True})
    for name in names:
        domain = fleet.domain(name)
        assert _boot_dev(domain, libvirt.VIR_DOMAIN_XML_INACTIVE) == (
            wanted[name][1]), name
    for name in names:
        fleet.cluster.request(
            'PUT', '/v1/nodes/%s/management/boot_device' % name,
            {'boot_device': 'pxe', 'persistent': True})


def test_power_reaches_each_nodes_domain(fleet):
    # Two nodes per hypervisor, one per hv1 conductor: TCG guests are
    # CPU-heavy and the other nodes' paths are the same.
    by_conductor = {}
    for name, node in fleet.all_nodes().items():
        by_conductor.setdefault(node['conductor'], name)
    sample = sorted(set(by_conductor.values()) | {fleet.nodes['hv2'][-1]})
    for name in sample:
        fleet.power(name, 'on')
        assert _state(fleet.domain(name)) == libvirt.VIR_DOMAIN_RUNNING
        assert fleet.node(name)['power_state'] == 'power on'
        fleet.power(name, 'off')
        assert _state(fleet.domain(name)) == libvirt.VIR_DOMAIN_SHUTOFF
    others = [n for n in fleet.nodes['hv1'] + fleet.nodes['hv2']
              if n not in sample]
    for name in others:
        assert _state(fleet.domain(name)) == libvirt.VIR_DOMAIN_SHUTOFF


def test_each_conductor_connects_only_to_its_groups_hypervisor(fleet):
    # Every conductor has synced its nodes' power states by now (or will
    # at its next sync): libvirtd lists one client per conductor of the
    # hypervisor's group and none from any other conductor.
    expected = fleet.expected_connections()
    try:
        system.wait_for(lambda: fleet.connections() == expected,
                        SLACK, 'one connection per conductor and group')
    except system.HarnessError:
        assert fleet.connections() == expected


def test_unreachable_hypervisor_fails_only_its_groups_nodes(fleet):
    hv2 = fleet.hypervisors['hv2']
    hv1_names, hv2_names = fleet.nodes['hv1'], fleet.nodes['hv2']
    hv2.stop_libvirtd()
    try:
        nodes = fleet.wait_nodes(
            'hv2 nodes in maintenance after failed syncs',
            lambda n: n['maintenance'] and n['fault'] == 'power failure',
            hv2_names, SLACK)
        for name in hv2_names:
            assert nodes[name]['power_state'] is None
            reason = nodes[name]['maintenance_reason']
            assert 'cannot use the hypervisor' in reason, reason
            assert hv2.sasl_password not in reason
        for name in hv1_names:
            assert _summary(nodes[name]) == dict(
                _summary(nodes[name]), maintenance=False, fault=None,
                power_state='power off', last_error=None), name
        # An action on an hv2 node fails (why it says so only in the
        # conductor's log: see test_driver_error_reaches_the_api_user);
        # on hv1 it works.
        with pytest.raises(ironic_harness.IronicError):
            fleet.cli('node', 'boot', 'device', 'set', hv2_names[0], 'disk',
                      json=False)
        fleet.cli('node', 'boot', 'device', 'set', '--persistent',
                  hv1_names[0], 'disk', json=False)
        assert _boot_dev(fleet.domain(hv1_names[0]),
                         libvirt.VIR_DOMAIN_XML_INACTIVE) == 'hd'
        fleet.cli('node', 'boot', 'device', 'set', '--persistent',
                  hv1_names[0], 'pxe', json=False)
    finally:
        hv2.start_libvirtd()
    # Ironic's power failure recovery takes the nodes out of maintenance.
    fleet.conns['hv2'] = libvirt.open(hv2.uri_unix)
    fleet.wait_nodes('hv2 nodes recovered',
                     lambda n: not n['maintenance']
                     and n['power_state'] == 'power off', hv2_names, SLACK)


def test_takeover_of_a_killed_conductors_nodes(fleet):
    victim, survivor = fleet.conductors('hv1')
    nodes = fleet.all_nodes()
    owned = sorted(name for name in fleet.nodes['hv1']
                   if nodes[name]['conductor'] == victim.host)
    assert owned, 'the hash ring gave %s no node' % victim.host
    hv2_before = {name: nodes[name]['conductor']
                  for name in fleet.nodes['hv2']}
    one_time, synced = owned[0], owned[-1]
    # A one-time boot device set through the conductor about to die.
    fleet.cli('node', 'boot', 'device', 'set', one_time, 'cdrom', json=False)
    assert fleet.cli('node', 'boot', 'device', 'show', one_time) == {
        'boot_device': 'cdrom', 'persistent': False}

    victim.kill()
    killed = time.monotonic()
    nodes = fleet.wait_nodes(
        'nodes of %s taken over by %s' % (victim.host, survivor.host),
        lambda n: n['conductor'] == survivor.host, owned,
        TAKEOVER_BOUND + SLACK)
    print('takeover seen after %.1f s (bound %d s: heartbeat interval + '
          'timeout + hash ring reset)'
          % (time.monotonic() - killed, TAKEOVER_BOUND))
    assert {name: nodes[name]['conductor']
            for name in fleet.nodes['hv2']} == hv2_before

    # The one-time device lives in the domain: the survivor applies it.
    assert fleet.cli('node', 'boot', 'device', 'show', one_time) == {
        'boot_device': 'cdrom', 'persistent': False}
    domain = fleet.domain(one_time)
    fleet.power(one_time, 'on')
    assert _boot_dev(domain) == 'cdrom'
    assert _boot_dev(domain, libvirt.VIR_DOMAIN_XML_INACTIVE) == 'network'
    fleet.power(one_time, 'off')
    assert _state(domain) == libvirt.VIR_DOMAIN_SHUTOFF

    # The survivor's periodic sync covers the taken-over nodes: a start
    # behind Ironic's back is recorded, and so is the stop.
    domain = fleet.domain(synced)
    domain.create()
    try:
        fleet.wait_nodes('power on recorded by the sync',
                         lambda n: n['power_state'] == 'power on',
                         [synced], SLACK)
    finally:
        domain.destroy()
    fleet.wait_nodes('power off recorded by the sync',
                     lambda n: n['power_state'] == 'power off',
                     [synced], SLACK)

    # Back to three conductors; the killed one's row is taken over.
    victim.start()
    fleet.cluster.wait_alive(victim)
    fleet.wait_nodes('nodes back with %s' % victim.host,
                     lambda n: n['conductor'] == victim.host, owned,
                     TAKEOVER_BOUND + SLACK)


def test_restarted_conductor_reconnects_lazily(fleet):
    conductor = fleet.conductors('hv2')[0]
    name = fleet.nodes['hv2'][0]
    expected = fleet.expected_connections()
    system.wait_for(lambda: fleet.connections() == expected, SLACK,
                    'one connection per conductor and group')
    conductor.stop()
    others = [c for c in fleet.cluster.conductors if c is not conductor]
    # libvirtd drops the stopped conductor's connection.
    system.wait_for(
        lambda: fleet.connections() == fleet.expected_connections(others),
        SLACK, 'the connection of the stopped conductor to close')

    # Restarted without the power sync, so that nothing but the node
    # action below needs the hypervisor.
    conductor.start({'conductor': {'sync_power_state_interval': 0}})
    fleet.cluster.wait_alive(conductor)
    assert fleet.connections() == fleet.expected_connections(others)
    fleet.cli('node', 'boot', 'device', 'set', '--persistent', name, 'disk',
              json=False)
    assert _boot_dev(fleet.domain(name),
                     libvirt.VIR_DOMAIN_XML_INACTIVE) == 'hd'
    assert fleet.connections() == expected
    fleet.cli('node', 'boot', 'device', 'set', '--persistent', name, 'pxe',
              json=False)


def test_driver_error_reaches_the_api_user(fleet):
    # Over JSON-RPC the API re-raises only exception classes of
    # ironic.common.exception; any other would reach the user as
    # "Unexpected error raised by RPC" (HTTP 500) without the message.
    daemon = fleet.hypervisors['hv1']
    node = fleet.cli('node', 'create', '--driver', 'libvirt',
                     '--conductor-group', 'hv1',
                     '--driver-info', 'libvirt_uri=%s' % daemon.uri_tcp,
                     '--driver-info', 'sasl_username=%s' % (
                         daemon.sasl_username),
                     '--driver-info', 'sasl_password=%s' % (
                         daemon.sasl_password),
                     '--driver-info', 'libvirt_domain=no-such-domain')
    try:
        with pytest.raises(ironic_harness.IronicError) as failed:
            fleet.cli('node', 'boot', 'device', 'set', node['uuid'], 'disk',
                      json=False)
        assert 'Check driver_info libvirt_domain' in str(failed.value)
    finally:
        fleet.cli('node', 'delete', node['uuid'], json=False)
