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

"""The main job: a standalone Ironic powering and managing libvirt domains.

Run by ``tools/demo``. Starts a real Ironic (API and conductor in one
process) with this driver, makes a few domains, enrolls them as nodes
(half by domain name, half found by their port's MAC address), validates
and manages them, powers them on, sets a persistent then a one-time boot
device, reboots, powers off, prints a table and ``baremetal node list``,
then stops Ironic and removes every file it made, also on Ctrl-C.

With ``--deploy`` (root, Debian-like) it does one real deploy instead:
the agent's deploy ramdisk (built once, then reused from its cache), a
lab network with iPXE in a private network namespace, Ironic, one QEMU
domain enrolled and deployed with a whole-disk image, the image checked
on the domain's disk, every step with its elapsed time.

By default the domains live on libvirt's embedded test hypervisor: a node
file of the demo's own that only the Ironic process opens (and keeps open,
so the state persists there). With ``--real`` (root, Debian-like) they are
real QEMU domains on a private libvirtd, reached over qemu+tcp with SASL,
and libvirt's own view is shown next to Ironic's.
"""

import argparse
import importlib.metadata
import json
import pathlib
import shutil
import signal
import sys
import tempfile
import time
import urllib.error
import xml.etree.ElementTree as ET
from xml.sax import saxutils

import libvirt

from tests.harness import deploy as harness_deploy
from tests.harness import domains as harness_domains
from tests.harness import ironic as ironic_harness
from tests.harness import libvirtd as harness_libvirtd
from tests.harness import system

_TEST_DOMAIN = """\
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>{name}</name>
    <memory unit='MiB'>1024</memory>
    <vcpu>1</vcpu>
    <os>
      <type arch='x86_64'>hvm</type>
      <boot dev='network'/>
      <boot dev='hd'/>
    </os>
    <devices>
      <disk type='file' device='disk'>
        <source file='/var/lib/libvirt/images/{name}.qcow2'/>
        <target dev='vda' bus='virtio'/>
      </disk>
      <disk type='file' device='cdrom'>
        <target dev='sda' bus='sata'/>
        <readonly/>
      </disk>
      <interface type='network'>
        <mac address='{mac}'/>
        <source network='default'/>
      </interface>
    </devices>
    <test:runstate>5</test:runstate>
  </domain>
"""


class DemoError(Exception):
    """A step did not do what it should have."""


def _http_error(exc):
    """The message in an Ironic API error response."""
    try:
        message = json.loads(exc.read())['error_message']
        return json.loads(message)['faultstring']
    except (ValueError, KeyError, TypeError):
        return str(exc)


def _mac(index):
    return '52:54:00:de:%02x:%02x' % divmod(index, 256)


def _say(text, end='\n'):
    print(text, end=end, flush=True)


class TestHypervisor:
    """N shut off domains in a test:///PATH.xml node file."""

    real = False

    def __init__(self, work_dir, count):
        self.names = ['vm-%d' % i for i in range(count)]
        self.macs = [_mac(i) for i in range(count)]
        self.path = work_dir / 'nodes.xml'
        self.uri = 'test://%s' % self.path
        self.driver_info = {'libvirt_uri': self.uri}

    def start(self):
        self.path.write_text('<node>\n%s</node>\n' % ''.join(
            _TEST_DOMAIN.format(name=saxutils.escape(name), mac=mac)
            for name, mac in zip(self.names, self.macs)))

    def describe(self):
        return ("%d domains on libvirt's embedded test hypervisor (%s)"
                % (len(self.names), self.uri))

    def state(self, name):
        """Only the Ironic process sees these domains."""
        return None

    def booted_from(self, name):
        return None

    def stop(self):
        pass


class RealHypervisor:
    """N shut off QEMU domains on a private libvirtd over qemu+tcp SASL."""

    real = True

    def __init__(self, work_dir, count):
        self.daemon = harness_libvirtd.Libvirtd(work_dir / 'libvirtd',
                                                tcp=True)
        self.names = ['qemu-%d' % i for i in range(count)]
        self.macs = [_mac(i) for i in range(count)]
        self.uri = self.driver_info = None

    def start(self):
        self.daemon.start()
        conn = libvirt.open(self.daemon.uri_unix)
        try:
            for name, mac in zip(self.names, self.macs):
                disk = harness_domains.create_disk(
                    self.daemon.base_dir / ('%s.img' % name))
                conn.defineXML(harness_domains.minimal_domain_xml(
                    name, mac, disk=disk))
        finally:
            conn.close()
        self.uri = self.daemon.uri_tcp
        self.driver_info = {'libvirt_uri': self.uri,
                            'sasl_username': self.daemon.sasl_username,
                            'sasl_password': self.daemon.sasl_password}

    def describe(self):
        return ('%d QEMU domains on a private libvirtd (%s, SASL)'
                % (len(self.names), self.uri))

    def state(self, name):
        """The domain's state as virsh reports it."""
        return self.daemon.virsh('domstate', name).strip()

    def booted_from(self, name):
        """The first boot device of the running domain (libvirt's name)."""
        live = ET.fromstring(self.daemon.virsh('dumpxml', name))
        return live.find('os/boot').get('dev')

    def stop(self):
        self.daemon.stop()


class Demo:
    """The steps, run against one IronicService and one hypervisor."""

    def __init__(self, ironic, hypervisor):
        self.ironic = ironic
        self.hypervisor = hypervisor
        self.nodes = []

    def api(self, method, path, body=None):
        """Call Ironic's API; an HTTP error becomes its message."""
        try:
            return self.ironic.request(method, path, body)
        except urllib.error.HTTPError as exc:
            raise DemoError('%s %s: %s' % (method, path, _http_error(exc)))

    def node(self, uuid):
        return self.api('GET', '/v1/nodes/%s' % uuid)

    def wait(self, uuid, what, done, timeout=60):
        """Poll the node until ``done(node)`` or its last_error is set."""
        deadline = time.monotonic() + timeout
        while True:
            node = self.node(uuid)
            if done(node):
                return node
            pending = (node['target_power_state']
                       or node['target_provision_state']
                       or node['provision_state'] == 'verifying')
            if node['last_error'] and not pending:
                raise DemoError(node['last_error'])
            if time.monotonic() > deadline:
                raise DemoError('not %s after %d s' % (what, timeout))
            time.sleep(0.05)

    def step(self, label, action):
        """Print ``label ... ok`` around ``action()``, which may add a note."""
        _say('%s ... ' % label, end='')
        note = action()
        _say('ok' + (' (%s)' % note if note else ''))

    def libvirt_note(self, name):
        state = self.hypervisor.state(name)
        return 'libvirt: %s' % state if state else None

    def boot_device(self, uuid):
        return self.api('GET', '/v1/nodes/%s/management/boot_device' % uuid)

    def set_boot_device(self, uuid, device, persistent):
        self.api('PUT', '/v1/nodes/%s/management/boot_device' % uuid,
                 {'boot_device': device, 'persistent': persistent})
        shown = self.boot_device(uuid)
        if shown != {'boot_device': device, 'persistent': persistent}:
            raise DemoError('Ironic reports %s' % shown)

    def power(self, uuid, target, state, domain):
        self.api('PUT', '/v1/nodes/%s/states/power' % uuid,
                 {'target': target})
        self.wait(uuid, state, lambda n: n['power_state'] == state
                  and n['target_power_state'] is None)
        return self.libvirt_note(domain)

    def enroll(self, index):
        name = 'node-%d' % index
        domain = self.hypervisor.names[index]
        by_name = index % 2 == 0
        info = dict(self.hypervisor.driver_info)
        if by_name:
            info['libvirt_domain'] = domain
        node = self.api('POST', '/v1/nodes', {
            'name': name, 'driver': 'libvirt', 'driver_info': info})
        self.api('POST', '/v1/ports', {
            'node_uuid': node['uuid'],
            'address': self.hypervisor.macs[index]})
        self.nodes.append((name, node['uuid'], domain))
        return 'domain %s by %s' % (
            domain, 'name' if by_name else 'MAC %s' % self.hypervisor.macs[
                index])

    def validate(self, uuid):
        result = self.api('GET', '/v1/nodes/%s/validate' % uuid)
        for interface in ('power', 'management'):
            if not result[interface]['result']:
                raise DemoError('%s: %s' % (interface,
                                            result[interface]['reason']))

    def manage(self, uuid):
        self.api('PUT', '/v1/nodes/%s/states/provision' % uuid,
                 {'target': 'manage'})
        node = self.wait(uuid, 'manageable',
                         lambda n: n['provision_state'] == 'manageable')
        return 'power state read: %s' % node['power_state']

    def reboot(self, uuid, domain):
        note = self.power(uuid, 'rebooting', 'power on', domain)
        booted = self.hypervisor.booted_from(domain)
        if booted not in (None, 'cdrom'):
            raise DemoError('the domain booted from %s, not cdrom' % booted)
        after = self.boot_device(uuid)
        if after != {'boot_device': 'disk', 'persistent': True}:
            raise DemoError('after the one-time boot Ironic reports %s'
                            % after)
        return ', '.join(filter(None, [
            note, 'booted from cdrom' if booted else 'cdrom used once',
            'disk from now on']))

    def run_node(self, index, count):
        prefix = '[%d/%d] node-%d:' % (index + 1, count, index)
        self.step('%s enroll' % prefix, lambda: self.enroll(index))
        _name, uuid, domain = self.nodes[-1]
        self.step('%s validate power and management' % prefix,
                  lambda: self.validate(uuid))
        self.step('%s manage' % prefix, lambda: self.manage(uuid))
        self.step('%s power on' % prefix,
                  lambda: self.power(uuid, 'power on', 'power on', domain))
        self.step('%s boot device disk, persistent' % prefix,
                  lambda: self.set_boot_device(uuid, 'disk', True))
        self.step('%s boot device cdrom, next boot only' % prefix,
                  lambda: self.set_boot_device(uuid, 'cdrom', False))
        self.step('%s reboot' % prefix, lambda: self.reboot(uuid, domain))
        self.step('%s power off' % prefix,
                  lambda: self.power(uuid, 'power off', 'power off', domain))

    def table(self):
        """The final state of every node, as a plain aligned table."""
        header = ['NODE', 'DOMAIN', 'FOUND BY', 'POWER', 'BOOT DEVICE',
                  'PROVISION']
        if self.hypervisor.real:
            header.append('LIBVIRT SAYS')
        rows = [header]
        for name, uuid, domain in self.nodes:
            node = self.node(uuid)
            resolved = node['driver_internal_info'].get(
                'libvirt_domain_resolved') or {}
            boot = self.boot_device(uuid)
            row = [name, resolved.get('name', '?'),
                   'name' if node['driver_info'].get('libvirt_domain')
                   else 'port MAC',
                   node['power_state'],
                   '%s (%s)' % (boot['boot_device'], 'persistent'
                                if boot['persistent'] else 'once'),
                   node['provision_state']]
            if self.hypervisor.real:
                row.append(self.hypervisor.state(domain))
            rows.append(row)
        widths = [max(len(row[i]) for row in rows)
                  for i in range(len(header))]
        return '\n'.join('  '.join(cell.ljust(width) for cell, width
                                   in zip(row, widths)).rstrip()
                         for row in rows)


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='tools/demo',
        description='A standalone Ironic powering and managing libvirt '
                    'domains with ironic-libvirt.')
    parser.add_argument('--nodes', type=int, default=4, metavar='N',
                        help='how many domains and nodes (default: 4)')
    parser.add_argument('--deploy', action='store_true',
                        help='one real deploy: the agent writes an image '
                             'onto a QEMU domain booted with iPXE on a lab '
                             'network (root only)')
    parser.add_argument('--real', action='store_true',
                        help='real QEMU domains on a private libvirtd '
                             'over qemu+tcp with SASL (root only) instead '
                             "of libvirt's embedded test hypervisor")
    args = parser.parse_args(argv)
    if args.deploy and args.real:
        parser.error('--deploy always uses real QEMU domains: drop --real')
    if not 1 <= args.nodes <= 200:
        parser.error('--nodes must be between 1 and 200')
    return args


def _log_problems(ironic, count=10):
    lines = [line for line in ironic.log_text().splitlines()
             if ' ERROR ' in line or ' WARNING ' in line]
    return '\n'.join(lines[-count:]) or ironic.log_tail(count)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _ironic_service(work_dir, hypervisor):
    config = {}
    if not hypervisor.real:
        config['libvirt'] = {'allow_test_driver': True}
    return ironic_harness.IronicService(
        work_dir / 'ironic', enabled_hardware_types=['libvirt'],
        enabled_power_interfaces=['libvirt'],
        enabled_management_interfaces=['libvirt'], config=config,
        sync_power_state_interval=60, start_timeout=120)


def _deploy(work_dir):
    """One real deploy; the node ends ``active``."""
    progress = harness_deploy.Progress('demo')
    reason = system.skip_reason()
    if reason:
        raise DemoError('--deploy is not possible here: %s' % reason)
    try:
        kernel, ramdisk = harness_deploy.deploy_ramdisk(work_dir / 'ramdisk',
                                                        progress)
    except harness_deploy.RamdiskUnavailable as exc:
        raise DemoError('no deploy ramdisk: %s' % exc)
    with harness_deploy.DeployLab(work_dir / 'lab', kernel, ramdisk,
                                  progress) as lab:
        try:
            data = harness_deploy.whole_disk_image()
            url, checksum = lab.add_image('disk.raw', data)
            progress('image %s: %d MiB, sha256 %s'
                     % (url, len(data) >> 20, checksum))
            node = harness_deploy.NodeFlow(lab, lab.create_domain())
            progress('domain %s: 1 vCPU (TCG), %d MiB, %d GiB disk %s'
                     % (node.domain.name(), harness_deploy.MEMORY_MIB,
                        harness_deploy.DISK_GIB, node.domain.disk))
            # The demo skips automated cleaning: the tests cover it.
            node.enroll('libvirt', boot='ipxe', automated_clean=False)
            node.manage()
            node.provide(timeout=120)
            node.set_image(url, checksum)
            progress('deploying (the agent boots with iPXE, writes the '
                     'image, the domain reboots from its disk)')
            deployed = node.deploy()
            with open(node.domain.disk, 'rb') as disk:
                on_disk = disk.read(len(data))
            if on_disk != data:
                raise DemoError('the domain\'s disk does not hold the '
                                'image')
            booted = ET.fromstring(node.domain.XMLDesc(
                libvirt.VIR_DOMAIN_XML_INACTIVE)).find('os/boot').get('dev')
            progress('checked outside Ironic: the first %d MiB of %s are '
                     'the image (marker %r at 1 MiB); boot device %s; '
                     'domain %s' % (len(data) >> 20, node.domain.disk,
                                    harness_deploy.IMAGE_MARKER.strip(),
                                    booted, 'running'
                                    if node.domain.isActive() else 'off'))
            _say('\n$ baremetal node show %s' % node.uuid)
            _say(node.cli('node', 'show', node.uuid, '--fields', 'name',
                          'driver', 'boot_interface', 'deploy_interface',
                          'provision_state', 'power_state',
                          'instance_info').rstrip())
            _say('\nTimings: %s' % ', '.join(
                '%s %.1f s' % item for item in node.timings.items()))
            if deployed['provision_state'] != 'active':
                raise DemoError('node is %s' % deployed['provision_state'])
        except Exception:
            _say('\nIronic log, last warnings and errors:\n%s'
                 % _log_problems(lab.ironic))
            raise
    _say('\nDone in %.1f s: one node deployed and active (then cleaned '
         'up).' % progress.elapsed())


def _run(args, work_dir):
    if args.deploy:
        return _deploy(work_dir)
    started = time.monotonic()
    if args.real:
        reason = system.skip_reason()
        if reason:
            raise DemoError('--real is not possible here: %s' % reason)
        hypervisor = RealHypervisor(work_dir, args.nodes)
    else:
        hypervisor = TestHypervisor(work_dir, args.nodes)
    try:
        hypervisor.start()
        _say('Hypervisor: %s' % hypervisor.describe())
        ironic = _ironic_service(work_dir, hypervisor)
        _say('Starting a standalone Ironic %s with hardware type libvirt'
             ' ... ' % importlib.metadata.version('ironic'), end='')
        try:
            begin = time.monotonic()
            ironic.start()
            _say('ok (%.1f s, %s)' % (time.monotonic() - begin,
                                      ironic.endpoint))
            demo = Demo(ironic, hypervisor)
            for index in range(args.nodes):
                demo.run_node(index, args.nodes)
            _say('\n' + demo.table())
            _say('\n$ baremetal node list')
            _say(ironic.baremetal('node', 'list', json=False).rstrip())
        except Exception:
            _say('\nIronic log, last warnings and errors:\n%s'
                 % _log_problems(ironic))
            raise
        finally:
            ironic.stop()
    finally:
        hypervisor.stop()
    _say('\nDone in %.1f s: %d nodes enrolled, managed, powered on, '
         'rebooted and powered off.' % (time.monotonic() - started,
                                        args.nodes))


def main(argv=None):
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    # Ctrl-C, kill and a closed terminal all clean up (SIGINT included: a
    # shell ignores it for background jobs, which Python would inherit).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    work_dir = pathlib.Path(tempfile.mkdtemp(prefix='ironic-libvirt-demo-'))
    try:
        _run(args, work_dir)
        return 0
    except KeyboardInterrupt:
        _say('\nInterrupted.')
        return 130
    except (DemoError, system.HarnessError, OSError) as exc:
        _say('\nFailed: %s' % exc)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        shutil.rmtree(work_dir, ignore_errors=True)
        _say('Cleaned up: Ironic stopped, %s removed.' % work_dir)


if __name__ == '__main__':
    sys.exit(main())
