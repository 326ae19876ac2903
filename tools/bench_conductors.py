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

"""Benchmark: Ironic's periodic power sync of many nodes, 1 vs 2 conductors.

Not a test: it prints measurements and asserts nothing. Needs root and a
Debian-like machine (the test harness's PostgreSQL and libvirtd).

One PostgreSQL, one private libvirtd (qemu+tcp with SASL) with ``--nodes``
shut off QEMU domains (nothing runs), ironic-api and two ironic-conductor
processes (JSON-RPC, one conductor group). The nodes are enrolled and
managed, then:

1. conductor-1 is stopped: conductor-0 syncs every node;
2. conductor-1 is started again: each syncs the half the hash ring gives it.

**Sweep time** is what Ironic itself logs at the end of each run of its
``_sync_power_states`` periodic task ("Completed power state sync operation
... in X seconds"): from listing the conductor's nodes to the last node's
power state checked, with ``[conductor] sync_power_state_workers`` threads.
The first sweep after a change of conductors is discarded (the hash rings
may still be refreshing); the median of the next ``--sweeps`` is reported.
With two conductors, whose sweeps overlap but are not aligned, the fleet's
sweep time is the slower conductor's.

**Driver share**: py-spy samples conductor-0 (``--profile``, during two
extra sweeps of phase 1, not the timed ones; idle threads are not
sampled); the share is the fraction of samples with an ``ironic_libvirt``
frame on the stack, which includes waiting inside libvirt's client for
libvirtd's replies, split by the Ironic call that led there (Ironic's sync
also caches health and boot mode through the management interface).
Usage::

    tox -e bench-scale
    python -m tools.bench_conductors [--nodes 1000] [--sweeps 3] [--profile]
"""

import argparse
import concurrent.futures
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import libvirt

from tests.harness import domains as harness_domains
from tests.harness import ironic_cluster
from tests.harness import libvirtd as harness_libvirtd
from tests.harness import postgres
from tests.harness import system

GROUP = 'rack1'
SWEEP_RE = re.compile(r'Completed power state sync operation, .* in '
                      r'([0-9.]+) seconds')
HASH_RING_RESET_INTERVAL = 5
_STARTED = time.monotonic()


def stage(what):
    print('[%6.1f s] %s' % (time.monotonic() - _STARTED, what), flush=True)


def define_domains(daemon, count):
    """``count`` shut off domains bench-NNNN; returns their names."""
    conn = libvirt.open(daemon.uri_unix)
    try:
        names = []
        for index in range(count):
            name = 'bench-%04d' % index
            mac = '52:54:00:be:%02x:%02x' % divmod(index, 256)
            conn.defineXML(harness_domains.minimal_domain_xml(name, mac))
            names.append(name)
        return names
    finally:
        conn.close()


def enroll(cluster, daemon, names, workers=8):
    """Create and manage a node per domain, ``workers`` requests at once."""
    info = {'libvirt_uri': daemon.uri_tcp,
            'sasl_username': daemon.sasl_username,
            'sasl_password': daemon.sasl_password}

    def create(name):
        cluster.request('POST', '/v1/nodes', {
            'name': name, 'driver': 'libvirt', 'conductor_group': GROUP,
            'driver_info': dict(info, libvirt_domain=name)}, timeout=60)
        cluster.request('PUT', '/v1/nodes/%s/states/provision' % name,
                        {'target': 'manage'}, timeout=60)

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for future in [pool.submit(create, name) for name in names]:
            future.result()

    def all_manageable():
        nodes = cluster.request(
            'GET', '/v1/nodes?fields=provision_state,power_state'
            '&limit=%d' % len(names), timeout=60)['nodes']
        return all(n['provision_state'] == 'manageable'
                   and n['power_state'] == 'power off' for n in nodes)
    system.wait_for(all_manageable, 600, 'every node manageable',
                    interval=2)


def nodes_per_conductor(cluster, count):
    nodes = cluster.request('GET', '/v1/nodes/detail?limit=%d' % count,
                            timeout=60)['nodes']
    found = {}
    for node in nodes:
        found[node['conductor']] = found.get(node['conductor'], 0) + 1
    return found


def log_size(conductor):
    return os.path.getsize(conductor.log_path)


def sweeps_since(conductor, offset):
    with open(conductor.log_path, errors='replace') as log:
        log.seek(offset)
        return [float(m.group(1)) for m in SWEEP_RE.finditer(log.read())]


def wait_sweeps(conductors, count, timeout):
    """Wait for ``count`` more sweeps of each conductor; their times."""
    offsets = {c.name: log_size(c) for c in conductors}
    system.wait_for(
        lambda: all(len(sweeps_since(c, offsets[c.name])) >= count
                    for c in conductors),
        timeout, '%d power syncs' % count, interval=0.5)
    return {c.name: sweeps_since(c, offsets[c.name])[:count]
            for c in conductors}


def measure(cluster, conductors, sweeps, timeout):
    """Discard one sweep per conductor, then time ``sweeps`` of them."""
    time.sleep(HASH_RING_RESET_INTERVAL)
    wait_sweeps(conductors, 1, timeout)
    times = wait_sweeps(conductors, sweeps, timeout * sweeps)
    return {name: statistics.median(values) for name, values in
            times.items()}, times


# Where a sample with a driver frame comes from: the first of these
# names found in its stack.
DRIVER_CALLERS = (
    ('power state', 'LibvirtPower.get_power_state'),
    ('health', 'LibvirtManagement.get_node_health'),
    ('boot mode', 'LibvirtManagement.get_boot_mode'),
    ('secure boot', 'LibvirtManagement.get_secure_boot_state'),
    ('keepalive loop', 'EventLoop._run'),
)


def profile(conductor, sweeps, timeout, out_dir):
    """py-spy samples of the conductor during ``sweeps`` sweeps.

    :returns: (samples, {part: samples}) where the parts are 'driver',
        'sync' (Ironic's power sync) and, within 'driver', the labels of
        DRIVER_CALLERS and 'other'; None without py-spy or samples.
    """
    py_spy = shutil.which('py-spy', path=os.path.dirname(sys.executable))
    if py_spy is None:
        stage('py-spy not installed: no profile')
        return None
    raw = os.path.join(out_dir, 'conductor-0.py-spy.txt')
    spy = subprocess.Popen(
        [py_spy, 'record', '--pid', str(conductor.process.pid),
         '--subprocesses', '--nonblocking', '--threads', '--rate', '100',
         '--format', 'raw', '--output', raw],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_sweeps([conductor], sweeps, timeout * sweeps)
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output then
        spy.wait(60)
    total = 0
    parts = dict.fromkeys(['driver', 'sync', 'other'] + [
        label for label, _ in DRIVER_CALLERS], 0)
    with open(raw) as samples:
        for line in samples:
            stack, _, count = line.rstrip().rpartition(' ')
            count = int(count)
            total += count
            if 'sync_power_state' in stack:
                parts['sync'] += count
            if 'ironic_libvirt' not in stack:
                continue
            parts['driver'] += count
            label = next((label for label, name in DRIVER_CALLERS
                          if name in stack), 'other')
            parts[label] += count
    return (total, parts) if total else None


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--nodes', type=int, default=1000)
    parser.add_argument('--sweeps', type=int, default=3,
                        help='timed sweeps per phase (median reported)')
    parser.add_argument('--interval', type=int, default=10,
                        help='[conductor] sync_power_state_interval')
    parser.add_argument('--profile', action='store_true',
                        help='sample conductor-0 with py-spy')
    parser.add_argument('--profile-dir',
                        help='keep py-spy\'s samples (collapsed stacks, '
                             'one line per thread and stack) here')
    return parser.parse_args(argv)


def report(args, one, two, per_conductor, share):
    single = one['conductor-0']
    fleet = max(two.values())
    print('\n%d nodes, [conductor] sync_power_state_workers 8, interval '
          '%d s; sweep = Ironic\'s own "Completed power state sync" time, '
          'median of %d' % (args.nodes, args.interval, args.sweeps))
    print('%-14s %-22s %s'
          % ('conductors', 'nodes per conductor', 'sweep (s)'))
    print('%-14s %-22s %.2f' % ('1', args.nodes, single))
    print('%-14s %-22s %s -> fleet %.2f' % (
        '2', '/'.join(str(n) for n in per_conductor),
        ' '.join('%.2f' % two[name] for name in sorted(two)), fleet))
    print('ratio 1 conductor / 2 conductors: %.2f' % (single / fleet))
    if share:
        total, parts = share
        print('conductor-0 alone, %d py-spy samples of its busy threads: '
              "Ironic's power sync %.0f %%, with a driver frame %.0f %%:"
              % (total, 100.0 * parts['sync'] / total,
                 100.0 * parts['driver'] / total))
        for label in [label for label, _ in DRIVER_CALLERS] + ['other']:
            print('  %-15s %5.1f %%' % (label, 100.0 * parts[label] / total))


def main(argv=None):
    args = parse_args(argv)
    reason = system.skip_reason()
    if reason is not None:
        sys.exit('bench_conductors: %s' % reason)
    stage('ironic-libvirt conductor benchmark: %d nodes' % args.nodes)
    timeout = max(120, 10 * args.interval)
    with tempfile.TemporaryDirectory(prefix='bench-conductors-') as base, \
            postgres.Postgres() as database, \
            harness_libvirtd.Libvirtd(tcp=True) as daemon:
        stage('PostgreSQL and libvirtd started')
        names = define_domains(daemon, args.nodes)
        stage('%d domains defined' % len(names))
        cluster = ironic_cluster.IronicCluster(
            base, database.url, (GROUP, GROUP),
            enabled_hardware_types=['libvirt'],
            enabled_power_interfaces=['libvirt'],
            enabled_management_interfaces=['libvirt'],
            sync_power_state_interval=args.interval, start_timeout=180,
            config={'DEFAULT': {
                'hash_ring_reset_interval': HASH_RING_RESET_INTERVAL}})
        with cluster:
            first, second = cluster.conductors
            stage('ironic-api and 2 conductors started')
            enroll(cluster, daemon, names)
            stage('%d nodes enrolled and managed' % len(names))

            second.stop()
            one, _ = measure(cluster, [first], args.sweeps, timeout)
            stage('1 conductor: median sweep %.2f s' % one['conductor-0'])
            share = None
            if args.profile:
                share = profile(first, 2, timeout,
                                args.profile_dir or base)
                stage('profiled')

            second.start()
            cluster.wait_alive(second)
            two, _ = measure(cluster, [first, second], args.sweeps,
                             timeout)
            split = nodes_per_conductor(cluster, len(names))
            stage('2 conductors: median sweeps %s s, nodes %s' % (
                ' '.join('%.2f' % two[n] for n in sorted(two)), split))
            report(args, one, two, sorted(split.values()), share)


if __name__ == '__main__':
    main()
