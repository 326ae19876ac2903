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

"""The deploy ramdisk, really built and booted until the agent runs.

The build uses the shared cache (``$IRONIC_LIBVIRT_RAMDISK_CACHE`` or
/var/cache/ironic-libvirt/ramdisk), outside the clone: ~2 minutes when the
recipe changed, seconds otherwise. The guest is one QEMU TCG machine with
the kernel and initramfs passed directly and no NIC at all (its traffic
cannot leave it); ``console=ttyS0`` comes first on the command line, so the
serial log shows that /init writes to every console, not only the last.
"""

import subprocess
import time

import pytest

from ironic_libvirt.lab import ramdisk
from tests.functional import conftest
from tests.harness import system

# The budget of the initramfs (Ironic serves it; guests unpack it).
MAX_INITRAMFS = 120 * 1000 * 1000
AGENT_STARTED = ('ironic_python_agent.agent [-] Starting ironic-python-agent '
                 'version: %s' % ramdisk.DEFAULT_IPA_VERSION)
# In this order on the serial console.
MARKERS = ('Run /init as init process', 'ipa-init: udev settled',
           'ipa-init: network configured',
           'ipa-init: starting ironic-python-agent', AGENT_STARTED)
# TCG on a busy 2-core machine: ~30-60 s measured; generous.
BOOT_TIMEOUT = 600
CMDLINE = ('console=ttyS0,115200 console=tty0 ipa-debug=1 panic=1 '
           'ipa-api-url=http://127.0.0.1:6385')


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    """Build (or reuse) the ramdisk; the progress lines and the files."""
    conftest.require_real_components()
    lines = []
    output = tmp_path_factory.mktemp('ramdisk')
    paths = ramdisk.build(output, progress=lines.append)
    print('\n'.join(lines))  # the stage timings, shown with pytest -s
    return lines, paths


def test_build_artifacts(built, tmp_path):
    lines, (kernel, initramfs) = built
    assert (kernel.name, initramfs.name) == ('ipa.kernel', 'ipa.initramfs')
    # A bzImage carries "HdrS" at 0x202; gzip starts with 1f 8b.
    assert kernel.read_bytes()[0x202:0x206] == b'HdrS'
    with open(initramfs, 'rb') as stream:
        assert stream.read(2) == b'\x1f\x8b'
    size = initramfs.stat().st_size
    assert 30 * 1000 * 1000 < size <= MAX_INITRAMFS
    assert lines[0].split('] ', 1)[1].startswith(('building recipe',
                                                  'reusing the cached'))

    # The same recipe again: taken from the cache, byte for byte.
    again = []
    copies = ramdisk.build(tmp_path, progress=again.append)
    assert len(again) == 1 and 'reusing the cached ramdisk' in again[0]
    for original, copy in zip((kernel, initramfs), copies):
        assert copy.parent == tmp_path
        assert copy.read_bytes() == original.read_bytes()


def test_initramfs_contents(built):
    _, (_, initramfs) = built
    listing = subprocess.run(
        ['sh', '-c', 'pigz -dc "$0" | cpio -t --quiet', str(initramfs)],
        capture_output=True, text=True, check=True).stdout.split()
    names = set(listing)
    # What IPA shells out to (fuser, hexdump are easy to miss), the agent,
    # /init and the poweroff/reboot of a system without an init system.
    for needed in ('init', 'usr/sbin/poweroff', 'usr/sbin/reboot',
                   'usr/bin/fuser', 'usr/bin/hexdump', 'usr/sbin/parted',
                   'usr/sbin/sgdisk', 'usr/bin/qemu-img', 'usr/sbin/dhclient',
                   'usr/bin/busybox', 'opt/ipa/bin/ironic-python-agent'):
        assert needed in names, needed
    modules = {name.rsplit('/', 1)[-1] for name in names
               if name.startswith('usr/lib/modules/') and '.ko' in name}
    for module in ('virtio_blk.ko', 'virtio_net.ko', 'e1000.ko', 'sr_mod.ko',
                   'isofs.ko', 'ext4.ko', 'jbd2.ko'):
        assert module in modules, module
    assert len(modules) < 100
    # Trimmed: Perl beyond perl-base, the wheels that made the venv, pip,
    # documentation.
    assert 'opt/ipa/bin/pip' not in names
    for gone in ('usr/share/perl', 'usr/share/python-wheels',
                 'usr/share/doc', 'boot'):
        assert not [n for n in names if n.startswith(gone + '/')], gone


def test_boot_until_agent_starts(built, tmp_path):
    _, (kernel, initramfs) = built
    log = tmp_path / 'serial.log'
    qemu = subprocess.Popen(
        ['qemu-system-x86_64', '-accel', 'tcg', '-machine', 'pc',
         '-smp', '1', '-m', '1024', '-display', 'none', '-no-reboot',
         '-nic', 'none', '-serial', 'file:%s' % log, '-monitor', 'none',
         '-kernel', str(kernel), '-initrd', str(initramfs),
         '-append', CMDLINE],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)
    start = time.monotonic()
    try:
        def agent_started():
            if qemu.poll() is not None:
                raise AssertionError('QEMU exited (%s): %s\n%s' % (
                    qemu.returncode, qemu.stdout.read(), serial()[-3000:]))
            return AGENT_STARTED in serial()

        def serial():
            return log.read_text(errors='replace') if log.exists() else ''

        try:
            system.wait_for(agent_started, BOOT_TIMEOUT,
                            'the agent to start', interval=1)
        except system.HarnessError:
            pytest.fail('no "%s" on the serial console after %d s:\n%s'
                        % (AGENT_STARTED, BOOT_TIMEOUT, serial()[-3000:]))
        elapsed = time.monotonic() - start
        text = serial()
        positions = [text.find(marker) for marker in MARKERS]
        assert -1 not in positions, dict(zip(MARKERS, positions))
        assert positions == sorted(positions)
        assert 'ipa-init: consoles: /dev/ttyS0 /dev/tty0' in text
        print('agent started %.1f s after QEMU started' % elapsed)
    finally:
        qemu.kill()
        qemu.wait()
        qemu.stdout.close()
