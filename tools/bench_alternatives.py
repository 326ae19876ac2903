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

"""The alternatives, side by side with this driver on the same domains.

Ironic's ``redfish`` power and management interfaces against sushy-tools'
libvirt backend, served as DevStack serves it (gunicorn, 2 workers x 2
threads), and Ironic's ``ipmitool`` interfaces against virtualbmc (vbmcd,
one BMC per domain on 127.0.0.1, distinct ports). Both emulators are
installed from PyPI into a virtualenv of their own
(``.tox/bench-alternatives``) so that their dependencies never meet
Ironic's; ipmitool comes from Debian.
Servers listen on loopback only and are stopped by the process group of the
PID started here.

Run from ``tools/bench.py --real`` inside the harness libvirtd's mount
namespace, where ``qemu:///system`` is the private daemon: this driver,
sushy-tools and virtualbmc all reach it through the same unix socket.
"""

import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid as uuidlib

from ironic.common import boot_devices
from ironic.common import states
from ironic.conductor import task_manager
from ironic.conf import CONF
from ironic.drivers.modules.redfish import utils as redfish_utils
from ironic import objects
import libvirt

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMULATORS_VENV = os.path.join(REPO, '.tox', 'bench-alternatives')
EMULATOR_PACKAGES = ('sushy-tools', 'virtualbmc', 'gunicorn',
                     'libvirt-python')
URI = 'qemu:///system'
BMC_USER, BMC_PASSWORD = 'admin', 'password'

_T0 = time.monotonic()


def stage(text):
    """A progress line with the seconds since the benchmark started."""
    print('[%7.1fs] %s' % (time.monotonic() - _T0, text), flush=True)


def _free_port():
    sys.path.insert(0, REPO)
    from tests.harness import system
    return system.free_port()


def ensure_installed():
    """ipmitool (Debian) and the emulators' virtualenv (PyPI).

    :returns: the virtualenv's bin directory.
    """
    if shutil.which('ipmitool') is None:
        stage('installing ipmitool (apt-get)')
        env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
        cmd = ['apt-get', 'install', '-y', '-qq', '--no-install-recommends',
               'ipmitool']
        if subprocess.run(cmd, env=env).returncode:
            subprocess.run(['apt-get', 'update', '-qq'], env=env, check=True)
            subprocess.run(cmd, env=env, check=True)
    bindir = os.path.join(EMULATORS_VENV, 'bin')
    if not all(os.path.exists(os.path.join(bindir, b))
               for b in ('gunicorn', 'vbmcd', 'vbmc')):
        stage('installing %s into %s (pip)'
              % (', '.join(EMULATOR_PACKAGES), EMULATORS_VENV))
        subprocess.run(['python3', '-m', 'venv', EMULATORS_VENV],
                       check=True)
        subprocess.run([os.path.join(bindir, 'pip'), 'install', '-q']
                       + list(EMULATOR_PACKAGES), check=True)
    return bindir


class Servers:
    """sushy-tools under gunicorn and vbmcd, on loopback, in one workdir."""

    def __init__(self, bindir, workdir):
        self.bindir = bindir
        self.workdir = workdir
        self.procs = []
        self.redfish_port = None
        self.vbmc_env = None
        self.bmc_ports = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def _spawn(self, cmd, log_name, env=None):
        log = open(os.path.join(self.workdir, log_name), 'ab')
        with log:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=dict(os.environ, **(env or {})),
                start_new_session=True)
        self.procs.append(proc)
        return proc

    def _wait(self, predicate, what, proc, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError('%s exited (%s); see %s' % (
                    what, proc.returncode, self.workdir))
            try:
                if predicate():
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError('%s not ready within %ss' % (what, timeout))

    def start_sushy(self):
        """sushy-emulator as DevStack's install_redfish runs it."""
        config = os.path.join(self.workdir, 'emulator.conf')
        with open(config, 'w') as f:
            f.write("SUSHY_EMULATOR_LIBVIRT_URI = %r\n"
                    "SUSHY_EMULATOR_BOOT_LOADER_MAP = {\n"
                    "    'UEFI': {'x86_64': None},\n"
                    "    'Legacy': {'x86_64': None}}\n"
                    "SUSHY_EMULATOR_FEATURE_SET = 'full'\n" % URI)
        self.redfish_port = _free_port()
        proc = self._spawn([
            os.path.join(self.bindir, 'gunicorn'),
            'sushy_tools.emulator.main:app',
            '--bind', '127.0.0.1:%d' % self.redfish_port,
            '--env', 'FLASK_DEBUG=1',
            '--env', 'SUSHY_EMULATOR_CONFIG=%s' % config,
            '--workers', '2', '--threads', '2', '--timeout', '90',
            '--access-logfile=-', '--error-logfile=-'], 'sushy.log')
        url = 'http://127.0.0.1:%d/redfish/v1/Systems' % self.redfish_port
        self._wait(lambda: urllib.request.urlopen(url, timeout=5).status
                   == 200, 'sushy-emulator', proc)

    def start_vbmcd(self, names):
        """vbmcd with one BMC per domain name, ports from free ones."""
        vbmc_dir = os.path.join(self.workdir, 'vbmc')
        os.makedirs(vbmc_dir)
        config = os.path.join(self.workdir, 'virtualbmc.conf')
        with open(config, 'w') as f:
            f.write('[default]\nconfig_dir = %s\npid_file = %s\n'
                    'server_port = %d\n[log]\nlogfile = %s\n'
                    % (vbmc_dir, os.path.join(vbmc_dir, 'master.pid'),
                       _free_port(), os.path.join(self.workdir,
                                                  'vbmc.log')))
        self.vbmc_env = {'VIRTUALBMC_CONFIG': config}
        proc = self._spawn([os.path.join(self.bindir, 'vbmcd'),
                            '--foreground'], 'vbmcd.log', self.vbmc_env)
        env = dict(os.environ, **self.vbmc_env)
        self._wait(lambda: subprocess.run(
            [os.path.join(self.bindir, 'vbmc'), 'list'], env=env,
            capture_output=True).returncode == 0, 'vbmcd', proc)
        for name in names:
            port = self.bmc_ports[name] = _free_port()
            for args in (['add', name, '--port', str(port), '--address',
                          '127.0.0.1', '--libvirt-uri', URI,
                          '--username', BMC_USER, '--password', BMC_PASSWORD],
                         ['start', name]):
                subprocess.run([os.path.join(self.bindir, 'vbmc')] + args,
                               env=env, check=True, capture_output=True)
        for name, port in self.bmc_ports.items():
            self._wait(lambda: subprocess.run(
                ['ipmitool', '-I', 'lanplus', '-H', '127.0.0.1', '-p',
                 str(port), '-U', BMC_USER, '-P', BMC_PASSWORD, '-R', '1',
                 'power', 'status'], capture_output=True).returncode == 0,
                'the BMC of %s' % name, proc)

    def stop(self):
        """SIGTERM each server's process group (its PID), then SIGKILL."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs = []


def _node(ctx, driver, driver_info, **interfaces):
    node = objects.Node(ctx, uuid=str(uuidlib.uuid4()), driver=driver,
                        driver_info=driver_info, **interfaces)
    node.create()
    return node.uuid


def create_alternative_nodes(ctx, servers, domains):
    """A redfish node per domain, an ipmi node per domain with a BMC.

    :param domains: a list of (name, UUID).
    :returns: dict driver label -> list of node UUIDs, in domain order.
    """
    redfish = [_node(ctx, 'redfish', {
        'redfish_address': 'http://127.0.0.1:%d' % servers.redfish_port,
        'redfish_system_id': '/redfish/v1/Systems/%s' % dom_uuid,
        'redfish_username': BMC_USER, 'redfish_password': BMC_PASSWORD},
        power_interface='redfish', management_interface='redfish')
        for _name, dom_uuid in domains]
    ipmi = [_node(ctx, 'ipmi', {
        'ipmi_address': '127.0.0.1', 'ipmi_port': servers.bmc_ports[name],
        'ipmi_username': BMC_USER, 'ipmi_password': BMC_PASSWORD},
        power_interface='ipmitool', management_interface='ipmitool')
        for name, _uuid in domains if name in servers.bmc_ports]
    return {'redfish': redfish, 'ipmitool': ipmi}


def timed(func, *args):
    start = time.perf_counter()
    func(*args)
    return time.perf_counter() - start


def _read(task):
    return task.driver.power.get_power_state(task)


def read_sweep(ctx, node_uuids):
    """One power-state read per node, each in an acquired shared task."""
    tasks = [task_manager.acquire(ctx, u, shared=True) for u in node_uuids]
    try:
        return [timed(_read, t) for t in tasks]
    finally:
        for task in tasks:
            task.release_resources()


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def summary(label, values, n_total=None):
    """Median, p90 and the sweep of ``n_total`` nodes (measured if None)."""
    sweep = (sum(values) if n_total is None
             else statistics.median(values) * n_total)
    return {'label': label, 'median': statistics.median(values),
            'p90': percentile(values, 0.9), 'sweep': sweep,
            'samples': len(values), 'estimated': n_total is not None}


def compare_reads(ctx, ours, floor_uuids, alternatives, n, rounds):
    """Warm reads per node: floor, this driver, redfish, ipmitool x2.

    The floor and this driver alternate for ``rounds`` sweeps, so both see
    the same machine noise; redfish reads every node once; ipmitool reads
    a sample (its sweep is estimated as median x N).

    :param ours: node UUIDs of this driver, one per domain.
    :param floor_uuids: the domains' UUIDs for the bare libvirt floor.
    :returns: a list of summaries, this driver's second.
    """
    read_sweep(ctx, ours)  # resolve every node once
    raw = libvirt.open(URI)
    floor, warm = [], []
    try:
        for _ in range(rounds):
            floor += [timed(lambda u: raw.lookupByUUIDString(u).state(), u)
                      for u in floor_uuids]
            warm += read_sweep(ctx, ours)
    finally:
        raw.close()
    rows = [summary('libvirt floor (lookup + state)', floor),
            summary('this driver (libvirt)', warm)]
    for row in rows:
        row['sweep'] /= rounds
    stage('redfish: %d reads' % len(alternatives['redfish']))
    read_sweep(ctx, alternatives['redfish'][:1])  # session, first GET
    rows.append(summary('redfish + sushy-tools',
                        read_sweep(ctx, alternatives['redfish'])))
    ipmi = alternatives['ipmitool']
    for interval in (CONF.ipmi.min_command_interval, 1):
        CONF.set_override('min_command_interval', interval, group='ipmi')
        stage('ipmitool: %d reads, min_command_interval=%d'
              % (len(ipmi), interval))
        rows.append(summary(
            'ipmitool + virtualbmc, min_command_interval=%d' % interval,
            read_sweep(ctx, ipmi), n_total=n))
    CONF.clear_override('min_command_interval', group='ipmi')
    return rows


def session_key_cost(ctx, node_uuid, times=3):
    """Median seconds of Ironic's redfish SessionCache key alone.

    ``SessionCache.__init__`` hashes the password with PBKDF2 (600,000
    rounds of SHA-512) on every redfish call, before the cache is looked
    at; it does no I/O, so it is timed by itself.
    """
    node = objects.Node.get_by_uuid(ctx, node_uuid)
    info = redfish_utils.parse_driver_info(node)
    return statistics.median(timed(redfish_utils.SessionCache, info)
                             for _ in range(times))


def zero_interval_outcome(ctx, node_uuid):
    """What one ipmitool read does with ``[ipmi] min_command_interval=0``."""
    CONF.set_override('min_command_interval', 0, group='ipmi')
    try:
        read_sweep(ctx, [node_uuid])
        return 'the read works'
    except Exception as exc:
        return 'the read fails: %s: %s' % (type(exc).__name__, exc)
    finally:
        CONF.clear_override('min_command_interval', group='ipmi')


def _exclusive(ctx, node_uuid, func):
    with task_manager.acquire(ctx, node_uuid, shared=False) as task:
        return func(task)


def _power(state):
    return lambda task: task.driver.power.set_power_state(task, state)


def _boot_set_and_read(device):
    def run(task):
        task.driver.management.set_boot_device(task, device,
                                               persistent=True)
        got = task.driver.management.get_boot_device(task)['boot_device']
        if got != device:
            raise RuntimeError('node %s: boot device %s read back as %s'
                               % (task.node.uuid, device, got))
    return run


def cycle_scenario(ctx, drivers, domain_uuids):
    """Per node: off -> on -> off, then a boot device set and read back.

    :param drivers: list of (label, node UUIDs in domain order).
    :param domain_uuids: the domains, for the bare libvirt floor.
    :returns: a list of dicts: label, 'on', 'off', 'boot' medians (s).
    """
    raw = libvirt.open(URI)
    try:
        floor = {'on': [], 'off': []}
        for dom_uuid in domain_uuids:
            dom = raw.lookupByUUIDString(dom_uuid)
            floor['on'].append(timed(dom.create))
            floor['off'].append(timed(dom.destroy))
    finally:
        raw.close()
    rows = [{'label': 'libvirt floor (create, destroy)',
             'on': statistics.median(floor['on']),
             'off': statistics.median(floor['off']), 'boot': None}]
    for label, node_uuids in drivers:
        stage('power cycle + boot device: %s, %d nodes'
              % (label, len(node_uuids)))
        times = {'on': [], 'off': [], 'boot': []}
        for node_uuid in node_uuids:
            _exclusive(ctx, node_uuid, _power(states.POWER_OFF))
            times['on'].append(timed(_exclusive, ctx, node_uuid,
                                     _power(states.POWER_ON)))
            times['off'].append(timed(_exclusive, ctx, node_uuid,
                                      _power(states.POWER_OFF)))
            times['boot'].append(
                timed(_exclusive, ctx, node_uuid,
                      _boot_set_and_read(boot_devices.CDROM))
                + timed(_exclusive, ctx, node_uuid,
                        _boot_set_and_read(boot_devices.PXE)))
        rows.append({'label': label,
                     **{k: statistics.median(v) / (2 if k == 'boot' else 1)
                        for k, v in times.items()}})
    return rows


def report_reads(n, rows, pbkdf2, zero):
    ours = rows[1]['median']
    print('\nPower state read, warm, per node, over %s,\n'
          'the same %d shut-off QEMU domains (ms; "~": median x N)'
          % (URI, n))
    head = '%-48s %9s %9s %11s %8s %10s' % (
        'driver', 'median', 'p90', 'sweep', 'samples', 'x ours')
    print(head)
    print('-' * len(head))
    for row in rows:
        print('%-48s %9.3f %9.3f %10.0f%s %8d %10.1f' % (
            row['label'], row['median'] * 1e3, row['p90'] * 1e3,
            row['sweep'] * 1e3, '~' if row['estimated'] else ' ',
            row['samples'], row['median'] / ours))
    print('of each redfish read, Ironic\'s SessionCache key (PBKDF2, '
          '600,000 x SHA-512) alone: %.1f ms' % (pbkdf2 * 1e3))
    print('ipmitool with [ipmi] min_command_interval=0: %s' % zero)
    sys.stdout.flush()


def report_cycle(rows):
    print('\nPower cycle and boot device, per node (s, medians):\n'
          'power on, off as Ironic sets them (returns once the state is '
          'read back);\nboot device set + read back')
    head = '%-48s %9s %9s %12s' % ('driver', 'on', 'off', 'boot dev')
    print(head)
    print('-' * len(head))
    for row in rows:
        print('%-48s %9.2f %9.2f %12s' % (
            row['label'], row['on'], row['off'],
            '-' if row['boot'] is None else '%.3f' % row['boot']))
    sys.stdout.flush()
