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

"""Benchmark: power-state sync cost per node against libvirt's own floor.

Not a test: it prints measurements, it asserts nothing. In ONE run, for
each N, it defines N domains, creates N nodes with ports in an Ironic
database, acquires one task per node (acquisition reported separately),
then times per node, inside the already-acquired task:

a. the floor: one reused libvirt connection, lookupByUUIDString + state();
b. this driver's ``get_power_state``: the first sweep (resolving every
   node by its port's MAC) and a warm sweep;
c. the old driver's algorithm: a fresh connection and a scan of every
   domain's XML for the node's MAC, then state(), per call (timed on a
   sample of nodes; its sweep total is the median times N).

Rounds of (a) and warm (b) alternate so that both see the same machine
noise. Usage::

    tox -e bench            # = python -m tools.bench --real --skip-test-driver
    python -m tools.bench --sizes 10,100,500,1000 [--real] [--alt-size 100]

``--real`` (root, Debian-like) also measures qemu:///system and qemu+ssh
on a private libvirtd started by the test harness, and on qemu:///system
the alternatives side by side (see :mod:`tools.bench_alternatives`):
Ironic's redfish interfaces over sushy-tools and ipmitool over virtualbmc,
power-state reads on ``--alt-size`` domains, then a power cycle and a boot
device change on ``--cycle-nodes`` of them through each driver.
"""

import argparse
import cProfile
import os
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid as uuidlib
import xml.etree.ElementTree as ET

# Ironic's conductor runs on native threads; select that backend before
# anything imports ironic.conductor.
from oslo_service import backend  # noqa: E402
backend.init_backend(backend.BackendType.THREADING)

from ironic.common import context as ironic_context  # noqa: E402
from ironic.conductor import task_manager  # noqa: E402
from ironic.conf import CONF  # noqa: E402
from ironic.db import migration  # noqa: E402
from ironic import objects  # noqa: E402
import libvirt  # noqa: E402

from ironic_libvirt.drivers import resolution  # noqa: E402
from tools.bench_alternatives import stage  # noqa: E402

ROUNDS = 5


def _mac(i):
    return '52:54:00:%02x:%02x:%02x' % (i >> 16 & 255, i >> 8 & 255, i & 255)


def _uuid(i):
    return str(uuidlib.UUID(int=(0x6b4e8d5e << 96) | i))


def _domain_xml(i, kind):
    return ("<domain type='%s'><name>bench-%d</name><uuid>%s</uuid>"
            "<memory unit='MiB'>32</memory><vcpu>1</vcpu>"
            "<os><type arch='x86_64'>hvm</type><boot dev='network'/></os>"
            "<devices><disk type='file' device='cdrom'>"
            "<target dev='hdc' bus='ide'/><readonly/></disk>"
            "<interface type='user'><mac address='%s'/>"
            "<model type='virtio'/></interface>"
            "<memballoon model='none'/></devices></domain>"
            % (kind, i, _uuid(i), _mac(i)))


class Hypervisor:
    """Where the N domains live, and how to open it."""

    def __init__(self, label, uri, driver_info, open_raw, define):
        self.label = label
        self.uri = uri
        self.driver_info = driver_info
        self.open_raw = open_raw
        self._define = define

    def define(self, n):
        return self._define(self, n)


def test_hypervisor(workdir):
    """libvirt's embedded test driver with a node file of N domains."""
    def define(hv, n):
        path = os.path.join(workdir, 'nodes-%d.xml' % n)
        with open(path, 'w') as f:
            f.write('<node>%s</node>' % ''.join(
                _domain_xml(i, 'test') for i in range(n)))
        hv.uri = 'test://' + path
        hv.driver_info = {'libvirt_uri': hv.uri}
        return lambda: None

    return Hypervisor('test:///', None, None,
                      lambda hv: libvirt.open(hv.uri), define)


def daemon_hypervisor(label, uri, driver_info, raw_uri=None):
    """A real libvirtd: N persistent QEMU domains defined, not started."""
    def open_raw(hv):
        return libvirt.open(raw_uri or uri)

    def define(hv, n):
        conn = open_raw(hv)
        doms = [conn.defineXML(_domain_xml(i, 'qemu')) for i in range(n)]

        def undefine():
            for dom in doms:
                dom.undefine()
            conn.close()
        return undefine

    return Hypervisor(label, uri, driver_info, open_raw, define)


def setup_ironic(workdir):
    CONF([], project='ironic', default_config_files=[])
    CONF.set_override('connection', 'sqlite:///%s/ironic.sqlite' % workdir,
                      group='database')
    # redfish and ipmi for the alternatives (bench_alternatives).
    CONF.set_override('enabled_hardware_types', ['libvirt', 'redfish',
                                                 'ipmi'])
    CONF.set_override('enabled_power_interfaces', ['libvirt', 'redfish',
                                                   'ipmitool'])
    CONF.set_override('enabled_management_interfaces',
                      ['libvirt', 'redfish', 'ipmitool'])
    CONF.set_override('enabled_boot_interfaces', ['pxe'])
    CONF.set_override('enabled_deploy_interfaces', ['direct'])
    for iface in ('bios', 'console', 'firmware', 'inspect', 'raid', 'rescue',
                  'vendor'):
        CONF.set_override('enabled_%s_interfaces' % iface, ['no-' + iface])
    for iface in ('network', 'storage'):
        CONF.set_override('enabled_%s_interfaces' % iface, ['noop'])
    CONF.set_override('allow_test_driver', True, group='libvirt')
    migration.create_schema()
    objects.register_all()
    return ironic_context.get_admin_context()


def create_nodes(ctx, hv, n):
    uuids = []
    for i in range(n):
        node = objects.Node(ctx, uuid=str(uuidlib.uuid4()), driver='libvirt',
                            driver_info=dict(hv.driver_info))
        node.create()
        objects.Port(ctx, node_id=node.id, address=_mac(i),
                     uuid=str(uuidlib.uuid4())).create()
        uuids.append(node.uuid)
    return uuids


def reset_driver():
    resolution.RESOLVER.reset()


def timed(func, *args):
    start = time.perf_counter()
    func(*args)
    return time.perf_counter() - start


def old_algorithm(hv, mac):
    """The old driver: fresh connection, XML scan of every domain."""
    conn = hv.open_raw(hv)
    try:
        for dom in conn.listAllDomains(0):
            root = ET.fromstring(dom.XMLDesc(0))
            macs = [m.get('address')
                    for m in root.iterfind('devices/interface/mac')]
            if mac in macs:
                return dom.state()[0]
    finally:
        conn.close()


def measure(ctx, hv, n, old_sample):
    stage('%s, N=%d: defining domains, creating nodes' % (hv.label, n))
    undefine = hv.define(n)
    try:
        node_uuids = create_nodes(ctx, hv, n)
        reset_driver()
        acquire = []
        tasks = []
        for node_uuid in node_uuids:
            start = time.perf_counter()
            tasks.append(task_manager.acquire(ctx, node_uuid, shared=True))
            acquire.append(time.perf_counter() - start)

        def get_state(task):
            return task.driver.power.get_power_state(task)

        stage('%s, N=%d: first sweep, then %d warm rounds'
              % (hv.label, n, ROUNDS))
        first = [timed(get_state, t) for t in tasks]
        raw = hv.open_raw(hv)
        floor, warm = [], []
        for _ in range(ROUNDS):
            floor += [timed(lambda u: raw.lookupByUUIDString(u).state(),
                            _uuid(i)) for i in range(n)]
            warm += [timed(get_state, t) for t in tasks]
        raw.close()
        stage('%s, N=%d: the old algorithm, %d calls'
              % (hv.label, n, min(n, old_sample)))
        step = max(1, n // old_sample)
        old = [timed(old_algorithm, hv, _mac(i))
               for i in range(0, n, step)][:old_sample]
        for task in tasks:
            task.release_resources()
        for node_uuid in node_uuids:
            objects.Node.get_by_uuid(ctx, node_uuid).destroy()
        return {
            'n': n, 'acquire': statistics.median(acquire),
            'a': statistics.median(floor), 'b1': statistics.median(first),
            'b1_total': sum(first), 'b': statistics.median(warm),
            'b_total': sum(warm) / ROUNDS,
            'a_total': sum(floor) / ROUNDS,
            'c': statistics.median(old), 'c_samples': len(old),
            'rss_mib': resource.getrusage(
                resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    finally:
        undefine()


def report(label, rows):
    us = 1e6
    print('\n%s  (medians per node in microseconds; sweep totals in ms)'
          % label)
    head = ('%6s %9s %9s %10s %9s %12s %12s %11s %8s %8s %9s'
            % ('N', 'acquire', 'a floor', 'b first', 'b warm',
               'c old', 'sweep a/b', 'sweep c~', 'b/a', 'c/b', 'peak MiB'))
    print(head)
    print('-' * len(head))
    for r in rows:
        print('%6d %9.1f %9.1f %10.1f %9.1f %12.1f %5.1f/%-6.1f %11.0f '
              '%8.2f %8.0f %9.0f'
              % (r['n'], r['acquire'] * us, r['a'] * us, r['b1'] * us,
                 r['b'] * us, r['c'] * us, r['a_total'] * 1e3,
                 r['b_total'] * 1e3, r['c'] * r['n'] * 1e3,
                 r['b'] / r['a'], r['c'] / r['b'], r['rss_mib']))
    if len(rows) > 1:
        print('flatness: b warm at N=%d / N=%d = %.2f; first sweep per node '
              'at N=%d / N=%d = %.2f (1.0 = O(N) sweep)'
              % (rows[-1]['n'], rows[0]['n'], rows[-1]['b'] / rows[0]['b'],
                 rows[-1]['n'], rows[0]['n'],
                 (rows[-1]['b1_total'] / rows[-1]['n'])
                 / (rows[0]['b1_total'] / rows[0]['n'])))
    print('c: %d sampled calls per N; "sweep c~" = median x N.'
          % rows[0]['c_samples'])
    sys.stdout.flush()


_IRONIC = {}


def ironic():
    """Ironic's configuration and database: once per process.

    Its database engine outlives a first setup, so a second run in the
    same process (test:/// and then qemu+ssh) must use the same file.

    :returns: (admin context, working directory).
    """
    if not _IRONIC:
        # Removed when the process exits.
        _IRONIC['dir'] = tempfile.TemporaryDirectory(prefix='ilv-bench-')
        _IRONIC['ctx'] = setup_ironic(_IRONIC['dir'].name)
    return _IRONIC['ctx'], _IRONIC['dir'].name


def run(hypervisors, sizes, old_sample, then=None):
    """Measure each hypervisor at each size; then ``then(ctx, workdir)``."""
    ctx, workdir = ironic()
    for hv in hypervisors(workdir):
        report(hv.label, [measure(ctx, hv, n, old_sample) for n in sizes])
    if then is not None:
        then(ctx, workdir)


def alternatives(args):
    """The alternatives on ``--alt-size`` domains of qemu:///system.

    :returns: a ``then`` for :func:`run`.
    """
    from tools import bench_alternatives as alt

    def then(ctx, workdir):
        bindir = alt.ensure_installed()
        n = args.alt_size
        hv = daemon_hypervisor('qemu:///system', 'qemu:///system',
                               {'libvirt_uri': 'qemu:///system'})
        alt.stage('defining %d QEMU domains (shut off)' % n)
        undefine = hv.define(n)
        domains = [('bench-%d' % i, _uuid(i)) for i in range(n)]
        bmcs = min(n, max(args.ipmi_sample, args.cycle_nodes))
        try:
            ours = create_nodes(ctx, hv, n)
            with alt.Servers(bindir, workdir) as servers:
                alt.stage('starting sushy-tools (gunicorn, 2 workers x 2 '
                          'threads)')
                servers.start_sushy()
                alt.stage('starting vbmcd with %d BMCs' % bmcs)
                servers.start_vbmcd([name for name, _ in domains[:bmcs]])
                others = alt.create_alternative_nodes(ctx, servers, domains)
                rows = alt.compare_reads(
                    ctx, ours, [u for _, u in domains],
                    {'redfish': others['redfish'],
                     'ipmitool': others['ipmitool'][:args.ipmi_sample]},
                    n, ROUNDS)
                alt.report_reads(
                    n, rows,
                    alt.session_key_cost(ctx, others['redfish'][0]),
                    alt.zero_interval_outcome(ctx, others['ipmitool'][0]))
                k = min(n, args.cycle_nodes)
                alt.report_cycle(alt.cycle_scenario(ctx, [
                    ('this driver (libvirt)', ours[:k]),
                    ('redfish + sushy-tools', others['redfish'][:k]),
                    ('ipmitool + virtualbmc, min_command_interval=%d'
                     % CONF.ipmi.min_command_interval,
                     others['ipmitool'][:k])],
                    [u for _, u in domains[:k]]))
                alt.stage('stopping the emulators')
        finally:
            undefine()
    return then


def run_real(args):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, repo)
    from tests.harness import libvirtd as harness
    from tests.harness import system

    reason = system.skip_reason()
    if reason:
        print('--real skipped: %s' % reason)
        return
    with harness.Libvirtd(ssh=True) as daemon:
        # qemu:///system as users type it: run inside the daemon's mount
        # namespace, where the default socket is the private libvirtd's.
        subprocess.run(daemon.namespace_command + [
            sys.executable, '-m', 'tools.bench', '--only-system',
            '--sizes', args.sizes, '--old-sample', str(args.old_sample),
            '--alt-size', str(args.alt_size),
            '--ipmi-sample', str(args.ipmi_sample),
            '--cycle-nodes', str(args.cycle_nodes)]
            + (['--no-alternatives'] if args.no_alternatives else []),
            env=dict(os.environ, PYTHONPATH=repo), check=True)
        uri = 'qemu+ssh://root@127.0.0.1:%d/system?no_verify=1&no_tty=1' % (
            daemon.sshd.port)
        key = str(daemon.sshd.keyfile)
        run(lambda _w: [daemon_hypervisor(
            'qemu+ssh (real libvirtd, QEMU domains)', uri,
            {'libvirt_uri': uri, 'ssh_key_filename': key},
            raw_uri=daemon.uri_ssh())],
            [int(s) for s in args.sizes.split(',')],
            max(3, args.old_sample // 4))


def profile(n, sweeps=50):
    """cProfile of warm sweeps on test:///, where the Python shows.

    libvirt's test driver answers in-process in microseconds, so what is
    left is the driver's and Ironic's own work per read.
    """
    ctx, workdir = ironic()
    hv = test_hypervisor(workdir)
    undefine = hv.define(n)
    node_uuids = create_nodes(ctx, hv, n)
    reset_driver()
    tasks = [task_manager.acquire(ctx, u, shared=True) for u in node_uuids]
    try:
        for task in tasks:
            task.driver.power.get_power_state(task)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(sweeps):
            for task in tasks:
                task.driver.power.get_power_state(task)
        profiler.disable()
    finally:
        for task in tasks:
            task.release_resources()
        undefine()
    print('\ncProfile of %d warm reads on test:/// (N=%d), by own time:'
          % (sweeps * n, n))
    pstats.Stats(profiler, stream=sys.stdout).sort_stats(
        'tottime').print_stats(15)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', default='10,100,500,1000')
    parser.add_argument('--old-sample', type=int, default=10,
                        help='calls of the old algorithm timed per N')
    parser.add_argument('--real', action='store_true',
                        help='also qemu:///system and qemu+ssh on a real '
                             'libvirtd (root)')
    parser.add_argument('--profile', action='store_true',
                        help='only a cProfile of warm reads on test:///')
    parser.add_argument('--only-system', action='store_true',
                        help=argparse.SUPPRESS)
    parser.add_argument('--skip-test-driver', action='store_true',
                        help='with --real, measure only the real libvirtd')
    parser.add_argument('--no-alternatives', action='store_true',
                        help='with --real, leave out redfish/sushy-tools '
                             'and ipmitool/virtualbmc')
    parser.add_argument('--alt-size', type=int, default=100,
                        help='domains for the side-by-side comparison')
    parser.add_argument('--ipmi-sample', type=int, default=5,
                        help='nodes read through ipmitool (each read '
                             'waits min_command_interval)')
    parser.add_argument('--cycle-nodes', type=int, default=2,
                        help='nodes power cycled per driver')
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(',')]
    print('ironic-libvirt benchmark: %s' % ' '.join(sys.argv))
    if args.profile:
        profile(sizes[0] if len(sizes) == 1 else 100)
        return
    if args.only_system:
        run(lambda _w: [daemon_hypervisor(
            'qemu:///system (real libvirtd, QEMU domains)', 'qemu:///system',
            {'libvirt_uri': 'qemu:///system'})], sizes, args.old_sample,
            None if args.no_alternatives else alternatives(args))
        return
    if not (args.real and args.skip_test_driver):
        run(lambda w: [test_hypervisor(w)], sizes, args.old_sample)
    if args.real:
        run_real(args)


if __name__ == '__main__':
    main()
