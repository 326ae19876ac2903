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

"""A deploy lab: Ironic, libvirtd, a lab network and a web server.

Everything runs in a private network namespace
(:class:`tests.harness.netns.NetNamespace`):

* libvirtd (QEMU, qemu+tcp with SASL on the namespace's 127.0.0.1);
* the lab network ``ilv-lab`` (10.250.0.1/24), whose DHCP hands out
  ``boot.ipxe`` from Ironic's web server, or nothing for virtual media
  (:meth:`DeployLab.network_boot`);
* a web server for Ironic's ``[deploy] http_root``, which also holds the
  deploy kernel and ramdisk and the test images;
* Ironic (API and conductor), its API on every address of the namespace:
  the agent calls it on 10.250.0.1 and the test process, outside, on
  127.0.0.1 through a forwarded port.

The agent reaches Ironic and the web server at the network's host address
(an isolated libvirt network gives guests no default route, so the agent
must find Ironic on its own subnet), the conductor reaches the agent at
its DHCP lease.
"""

import hashlib
import os
import pathlib
import struct
import sys
import time
import uuid
from xml.sax import saxutils

import libvirt

from ironic_libvirt.lab import network as lab_network
from ironic_libvirt.lab import ramdisk
from tests.harness import domains as harness_domains
from tests.harness import ironic as ironic_harness
from tests.harness import libvirtd as harness_libvirtd
from tests.harness import netns as harness_netns
from tests.harness import process
from tests.harness import system

HOST_ADDRESS = '10.250.0.1'
DISK_GIB = 5
MEMORY_MIB = 1024
MEDIA_POOL = 'ironic-deploy-media'
MEDIA_POOL_PATH = '/var/lib/libvirt/images/ironic-deploy-media'
HARDWARE_TYPES = ['libvirt', 'pxe_libvirt_agent', 'pxe_libvirt_iscsi']
IMAGE_MARKER = b'ironic-libvirt deploy marker\n'
# Seconds Ironic waits for the agent's first call: generous, TCG is slow.
CALLBACK_TIMEOUT = 600


class RamdiskUnavailable(Exception):
    """The deploy ramdisk can neither be found nor built here."""


def deploy_ramdisk(output_dir, progress):
    """The agent's kernel and ramdisk, copied into ``output_dir``.

    ``ironic-libvirt build-ramdisk``'s builder: a build of a few minutes
    the first time, then its cache (``$IRONIC_LIBVIRT_RAMDISK_CACHE`` or
    /var/cache/ironic-libvirt/ramdisk).

    :returns: (kernel path, ramdisk path).
    :raises: RamdiskUnavailable with the builder's reason.
    """
    try:
        return ramdisk.build(output_dir, progress=progress)
    except ramdisk.BuildError as exc:
        raise RamdiskUnavailable(str(exc))


class Progress(object):
    """Prints ``[+SECONDS] phase`` lines, flushed, to ``stream``."""

    def __init__(self, prefix='deploy', stream=None):
        self.prefix = prefix
        self.stream = stream or sys.stdout
        self.started = time.monotonic()

    def elapsed(self):
        """Seconds since this Progress was made."""
        return time.monotonic() - self.started

    def __call__(self, text):
        print('[%s +%6.1fs] %s' % (self.prefix, self.elapsed(), text),
              file=self.stream, flush=True)


def ironic_config(api_port, http_url, base_dir, deploy_kernel,
                  deploy_ramdisk, callback_timeout=CALLBACK_TIMEOUT):
    """ironic.conf sections for deploys on a lab network.

    Every setting a deploy on QEMU needed is here; doc/source/deploy.rst
    explains each.

    :param api_port: the API's port; the agent calls HOST_ADDRESS:port.
    :param http_url: where ``[deploy] http_root`` is served.
    :param base_dir: Ironic's directory (http_root, tftp_root).
    :param deploy_kernel: URL of the agent's kernel.
    :param deploy_ramdisk: URL of the agent's ramdisk.
    :param callback_timeout: seconds to wait for the agent's first
        heartbeat (deploy and cleaning).
    """
    return {
        'DEFAULT': {
            'enabled_boot_interfaces': ['ipxe', 'pxe', 'libvirt-vmedia'],
            'enabled_deploy_interfaces': ['direct'],
            'enabled_inspect_interfaces': ['no-inspect'],
            'enabled_console_interfaces': ['no-console'],
            'enabled_bios_interfaces': ['no-bios'],
            'enabled_firmware_interfaces': ['no-firmware'],
            'enabled_raid_interfaces': ['no-raid', 'agent'],
            'enabled_rescue_interfaces': ['no-rescue'],
            'enabled_storage_interfaces': ['noop'],
            'enabled_vendor_interfaces': ['no-vendor'],
            # Debian installs isolinux.bin elsewhere than Ironic's default.
            'isolinux_bin': '/usr/lib/ISOLINUX/isolinux.bin',
        },
        'api': {'host_ip': '0.0.0.0'},
        'conductor': {
            'automated_clean': True,
            'deploy_kernel': deploy_kernel,
            'deploy_ramdisk': deploy_ramdisk,
            # The vmedia ISO would carry the ramdisk unpacked (~350 MB),
            # more than a 1 GiB guest can unpack.
            'disable_zstandard_decompression': True,
            'deploy_callback_timeout': callback_timeout,
            'clean_callback_timeout': callback_timeout,
            'check_provision_state_interval': 5,
        },
        'deploy': {
            'http_url': http_url,
            'http_root': str(base_dir / 'httpboot'),
            # Domains boot SeaBIOS: no EFI boot loader image needed.
            'default_boot_mode': 'bios',
            # Only erase_devices_metadata: shredding a disk takes minutes.
            'erase_devices_priority': 0,
            'erase_devices_metadata_priority': 99,
        },
        'pxe': {
            'tftp_root': str(base_dir / 'tftpboot'),
            'kernel_append_params': 'console=ttyS0,115200',
        },
        # The agent's ipa-api-url: the API as seen from the lab network.
        'service_catalog': {
            'endpoint_override': 'http://%s:%d' % (HOST_ADDRESS, api_port)},
        'libvirt': {'media_pool': MEDIA_POOL,
                    'media_pool_path': MEDIA_POOL_PATH},
    }


def domain_xml(name, mac, disk, network, console_log):
    """A BIOS domain as the deploy needs it.

    1 vCPU (TCG), 1024 MiB (the ramdisk unpacks into RAM), a sparse raw
    disk of DISK_GIB (at least the 4 GiB the agent looks for, so it does
    not wait 30 s for a bigger one), an empty SATA CD-ROM for virtual
    media, one virtio NIC on ``network`` and the serial console in a file.
    """
    serial = ("<serial type='file'><source path=%s append='on'/>"
              "<target port='0'/></serial>"
              % saxutils.quoteattr(str(console_log)))
    return harness_domains.minimal_domain_xml(
        name, mac, uuid=uuid.uuid4(), disk=disk, memory_mib=MEMORY_MIB,
        interface_xml=network.interface_xml(mac), serial_xml=serial)


def whole_disk_image(size_mib=16, marker=IMAGE_MARKER):
    """A raw whole-disk image to deploy, as bytes.

    An MBR with one Linux partition from 1 MiB to the end; the partition
    starts with ``marker``, random bytes fill the rest, so that comparing
    a disk with the image byte for byte means something.
    """
    sector = 512
    first = 2048
    sectors = size_mib * 1024 * 1024 // sector
    entry = struct.pack('<B3sB3sII', 0, b'\xfe\xff\xff', 0x83,
                        b'\xfe\xff\xff', first, sectors - first)
    mbr = bytes(446) + entry + bytes(48) + b'\x55\xaa'
    partition = marker + os.urandom((sectors - first) * sector - len(marker))
    return mbr + bytes((first - 1) * sector) + partition


class DeployLab(object):
    """The deploy lab; a context manager.

    :param base_dir: an empty directory for everything the lab makes.
    :param kernel: path of the agent's kernel.
    :param ramdisk: path of the agent's ramdisk.
    :param progress: a :class:`Progress`.
    :param callback_timeout: see :func:`ironic_config`.
    :param bin_dir: the venv bin directory with ``ironic`` and ``baremetal``.
    """

    def __init__(self, base_dir, kernel, ramdisk, progress=None,
                 callback_timeout=CALLBACK_TIMEOUT, bin_dir=None):
        self.base_dir = pathlib.Path(base_dir)
        self.kernel = pathlib.Path(kernel)
        self.ramdisk = pathlib.Path(ramdisk)
        self.progress = progress or Progress()
        self.callback_timeout = callback_timeout
        self.bin_dir = bin_dir or os.path.dirname(sys.executable)
        self.netns = self.libvirtd = self.ironic = None
        self.network = None
        self._web = None
        self._conn = None
        self.http_url = None
        self._count = 0
        self._restarts = 0

    @property
    def http_root(self):
        return self.base_dir / 'ironic' / 'httpboot'

    def start(self):
        """Start every part, in the order they depend on each other."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self):
        say = self.progress
        self.netns = harness_netns.NetNamespace(self.base_dir / 'netns')
        self.netns.start()
        say('network namespace ready')
        self.libvirtd = harness_libvirtd.Libvirtd(
            self.base_dir / 'libvirtd', tcp=True, netns=self.netns)
        self.libvirtd.start()
        self._conn = libvirt.open(self.libvirtd.uri_unix)
        say('libvirtd ready (%s)' % self.libvirtd.uri_tcp)

        ironic_dir = self.base_dir / 'ironic'
        (self.http_root / 'lab').mkdir(parents=True)
        # The agent's kernel and ramdisk, served without a copy.
        for source, name in ((self.kernel, 'deploy.kernel'),
                             (self.ramdisk, 'deploy.initramfs')):
            (self.http_root / 'lab' / name).symlink_to(source.resolve())
        web_port = system.free_port()
        self.http_url = 'http://%s:%d' % (HOST_ADDRESS, web_port)
        web_log = self.base_dir / 'web.log'
        self._web = process.spawn(self.netns.command([
            sys.executable, '-m', 'http.server', '--bind', '0.0.0.0',
            '--directory', self.http_root, web_port]), web_log)
        system.wait_for(
            lambda: process.check_alive(self._web, 'web server', web_log)
            and self.netns.port_open(web_port), 20, 'the web server')

        self.network_boot('ipxe')

        api_port = system.free_port()
        self.netns.forward(api_port)
        self.ironic = ironic_harness.IronicService(
            ironic_dir, enabled_hardware_types=HARDWARE_TYPES,
            enabled_power_interfaces=['libvirt'],
            enabled_management_interfaces=['libvirt'],
            config=ironic_config(
                api_port, self.http_url, ironic_dir,
                '%s/lab/deploy.kernel' % self.http_url,
                '%s/lab/deploy.initramfs' % self.http_url,
                self.callback_timeout),
            sync_power_state_interval=60, bin_dir=self.bin_dir,
            start_timeout=120, command_prefix=self.netns.command(),
            port=api_port)
        self.ironic.start()
        say('Ironic ready (API %s, agent calls http://%s:%d)'
            % (self.ironic.endpoint, HOST_ADDRESS, api_port))

    def network_boot(self, boot):
        """(Re)create the lab network with DHCP boot option ``boot``.

        Domains keep their NIC's definition; running ones lose their link,
        so switch between guests.

        :param boot: ``ipxe`` or None (see LabNetwork).
        """
        self.network = lab_network.LabNetwork(
            name='ilv-lab', bridge='ilv-lab0', cidr='%s/24' % HOST_ADDRESS,
            boot=boot, http_url=self.http_url)
        self.network.create(self._conn)
        self.progress('lab network %s: %s, DHCP boot file %s'
                      % (self.network.name, self.network.interface,
                         self.network.boot_file()))

    def add_image(self, name, data):
        """Publish ``data`` as an image; return (URL, sha256 hex)."""
        (self.http_root / 'lab' / name).write_bytes(data)
        return ('%s/lab/%s' % (self.http_url, name),
                hashlib.sha256(data).hexdigest())

    def create_domain(self):
        """Define a shut off domain on the lab network; return it.

        The libvirt domain gets attributes ``mac``, ``disk`` (the raw disk
        file) and ``console_log`` (its serial console).
        """
        self._count += 1
        name = 'deploy-%s' % uuid.uuid4().hex[:8]
        mac = '52:54:00:d0:%02x:%02x' % divmod(self._count, 256)
        disk = self.libvirtd.base_dir / ('%s.img' % name)
        harness_domains.create_disk(disk, size_mib=DISK_GIB << 10)
        console_log = self.base_dir / ('%s-console.log' % name)
        domain = self._conn.defineXML(domain_xml(
            name, mac, disk, self.network, console_log))
        domain.mac, domain.disk, domain.console_log = mac, disk, console_log
        return domain

    def driver_info(self, domain):
        """driver_info reaching ``domain`` over qemu+tcp with SASL."""
        return {'libvirt_uri': self.libvirtd.uri_tcp,
                'sasl_username': self.libvirtd.sasl_username,
                'sasl_password': self.libvirtd.sasl_password,
                'libvirt_domain': domain.name()}

    def restart_ironic(self, callback_timeout):
        """Restart Ironic on a new database with another callback timeout.

        Ironic reads the timeouts only when it starts; nodes are lost.
        """
        self.ironic.stop()
        os.unlink(os.path.join(self.ironic.base_dir, 'ironic.sqlite'))
        # start() begins a new log: keep the old one for post-mortems.
        self._restarts += 1
        os.replace(self.ironic.log_path,
                   '%s.%d' % (self.ironic.log_path, self._restarts))
        self.callback_timeout = callback_timeout
        for section in ('deploy_callback_timeout', 'clean_callback_timeout'):
            self.ironic.config['conductor'][section] = callback_timeout
        self.ironic.start()
        self.progress('Ironic restarted with a %d s callback timeout'
                      % callback_timeout)

    def remove_domains(self):
        """Destroy and undefine every domain, delete their disks."""
        self.libvirtd.cleanup_domains()
        for disk in self.libvirtd.base_dir.glob('deploy-*.img'):
            disk.unlink()

    def stop(self):
        """Stop Ironic, the web server, libvirtd, then the namespace."""
        if self.ironic is not None:
            self.ironic.stop()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self.libvirtd is not None:
            self.libvirtd.stop()
        if self._web is not None:
            process.terminate(self._web)
        if self.netns is not None:
            self.netns.stop()
        self.ironic = self.libvirtd = self._web = self.netns = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


class DeployError(system.HarnessError):
    """A node did not reach the state it should have."""


class NodeFlow(object):
    """One node's way through Ironic's provision states, with progress.

    Actions are ``baremetal`` commands; waiting polls the API once a
    second and reports each provision state and the agent's first
    heartbeat of a phase.

    :param lab: a started :class:`DeployLab`.
    :param domain: a domain from :meth:`DeployLab.create_domain`.
    """

    def __init__(self, lab, domain):
        self.lab = lab
        self.domain = domain
        self.uuid = None
        self.timings = {}

    def cli(self, *args, json=False):
        return self.lab.ironic.baremetal(*args, json=json, timeout=120)

    def show(self):
        """The node as the API returns it."""
        return self.lab.ironic.request('GET', '/v1/nodes/%s' % self.uuid)

    def enroll(self, driver, boot=None, automated_clean=True,
               extra_driver_info=None):
        """Create the node and its port; return the node."""
        args = ['node', 'create', '--driver', driver,
                '--name', self.domain.name()]
        if boot:
            args += ['--boot-interface', boot]
        info = self.lab.driver_info(self.domain)
        info.update(extra_driver_info or {})
        for key, value in info.items():
            args += ['--driver-info', '%s=%s' % (key, value)]
        node = self.cli(*args, json=True)
        self.uuid = node['uuid']
        self.cli('port', 'create', self.domain.mac, '--node', self.uuid)
        if not automated_clean:
            # The node's own setting wins over [conductor] automated_clean.
            self.lab.ironic.request(
                'PATCH', '/v1/nodes/%s' % self.uuid,
                [{'op': 'replace', 'path': '/automated_clean',
                  'value': False}])
        self.lab.progress('node %s enrolled: %s, boot %s, domain %s'
                          % (self.uuid, driver, node['boot_interface'],
                             self.domain.name()))
        return node

    def console_tail(self, lines=15):
        """The end of the domain's serial console."""
        try:
            text = self.domain.console_log.read_text(errors='replace')
        except OSError:
            return '(no console output)'
        return '\n'.join(text.splitlines()[-lines:])

    def wait(self, phase, goal, timeout, failed=()):
        """Wait for provision state ``goal``; return the node.

        Prints every provision state on the way and the first heartbeat.
        Records the phase's duration in ``timings``.

        :raises: DeployError on a state of ``failed`` or after ``timeout``
            seconds, with the node's last_error and the console's tail.
        """
        started = time.monotonic()
        deadline = started + timeout
        seen_state = None
        beat_before = self.show()['driver_internal_info'].get(
            'agent_last_heartbeat')
        beaten = False
        while True:
            node = self.show()
            state = node['provision_state']
            elapsed = time.monotonic() - started
            if state != seen_state:
                self.lab.progress('%s: %s (%.1f s)' % (phase, state, elapsed))
                seen_state = state
            beat = node['driver_internal_info'].get('agent_last_heartbeat')
            if not beaten and beat != beat_before:
                beaten = True
                self.timings['%s: first heartbeat' % phase] = elapsed
                self.lab.progress('%s: agent heartbeat (%.1f s)'
                                  % (phase, elapsed))
            # A failed state keeps its target (e.g. deploy failed: active).
            settled = (node['target_provision_state'] is None
                       or state.endswith(' failed'))
            if state == goal and settled:
                self.timings[phase] = elapsed
                return node
            if state in failed and settled:
                raise DeployError(
                    'node %s: %s ended in %s after %.0f s: %s\n'
                    'console:\n%s' % (self.uuid, phase, state, elapsed,
                                      node['last_error'] or self.errors(),
                                      self.console_tail()))
            if time.monotonic() > deadline:
                raise DeployError(
                    'node %s: not %s after %d s (%s, %s)\nconsole:\n%s'
                    % (self.uuid, goal, timeout, state, node['last_error'],
                       self.console_tail()))
            time.sleep(1)

    def errors(self):
        """The node's error events, oldest first, from its history.

        Ironic 39 can leave last_error empty after a failed deploy (a
        power action during the clean up clears it); the history keeps
        the message.
        """
        history = self.lab.ironic.request(
            'GET', '/v1/nodes/%s/history?detail=True' % self.uuid)
        return [event['event'] for event in history['history']
                if event['severity'] == 'ERROR']

    def wait_power_off(self, timeout=120):
        """Wait until Ironic reports the node powered off; return it.

        After a failed deploy Ironic may enter ``deploy failed`` first and
        power the node off afterwards.
        """
        deadline = time.monotonic() + timeout
        while True:
            node = self.show()
            if (node['power_state'] == 'power off'
                    and node['target_power_state'] is None):
                return node
            if time.monotonic() > deadline:
                raise DeployError('node %s: not powered off after %d s: %s'
                                  % (self.uuid, timeout,
                                     node['power_state']))
            time.sleep(1)

    def manage(self):
        self.cli('node', 'manage', self.uuid)
        return self.wait('manage', 'manageable', 60)

    def provide(self, timeout=900):
        """``provide``: automated cleaning by the agent, if enabled."""
        self.cli('node', 'provide', self.uuid)
        return self.wait('provide', 'available', timeout,
                         failed=('clean failed',))

    def set_image(self, url, checksum):
        """instance_info for a whole-disk raw image over HTTP."""
        self.cli('node', 'set', self.uuid,
                 '--instance-info', 'image_source=%s' % url,
                 '--instance-info', 'image_checksum=%s' % checksum,
                 # Streams the image to the disk; IPA would otherwise
                 # cache it and run qemu-img on a format it guesses.
                 '--instance-info', 'image_disk_format=raw')

    def deploy(self, timeout=900, goal='active'):
        self.cli('node', 'deploy', self.uuid)
        return self.wait('deploy', goal, timeout,
                         failed=('deploy failed',) if goal == 'active'
                         else ('active',))

    def undeploy(self, timeout=900):
        self.cli('node', 'undeploy', self.uuid)
        return self.wait('undeploy', 'available', timeout,
                         failed=('clean failed', 'error'))

    def delete(self):
        """Delete the node: out of maintenance-free states first."""
        if self.uuid is None:
            return
        node = self.show()
        if node['provision_state'] not in ('available', 'manageable',
                                           'enroll'):
            self.cli('node', 'maintenance', 'set', self.uuid)
        self.cli('node', 'delete', self.uuid)
        self.uuid = None
