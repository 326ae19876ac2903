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

"""Build an ironic-python-agent deploy ramdisk from Debian and PyPI.

The result is a kernel (``ipa.kernel``, Debian's own) and an initramfs
(``ipa.initramfs``) holding a minimal Debian root file system, a trimmed
set of kernel modules, ironic-python-agent in a virtualenv and a small
shell ``/init`` (no systemd). Only Debian's archive (through this
machine's apt sources) and PyPI are used: no prebuilt images.

Stages: rootfs (mmdebstrap), kernel (``apt-get download`` and ``dpkg-deb
-x``: no maintainer scripts, no initramfs-tools), IPA venv (pip in the
chroot), init, pack (cpio and gzip or zstd).

Results are cached under a key that hashes the whole recipe (packages,
modules, IPA version, kernel package version, init script, compression and
this module's source), so an unchanged recipe is built once.
"""

import dataclasses
import fcntl
import hashlib
import json
import os
import pathlib
import re
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request

DEFAULT_CACHE_DIR = '/var/cache/ironic-libvirt/ramdisk'
CACHE_DIR_ENV = 'IRONIC_LIBVIRT_RAMDISK_CACHE'
# Released on PyPI together with Ironic 39.0.0 (2026-09-21), the newest
# release; needs Python >= 3.11 (bookworm has 3.11.2).
DEFAULT_IPA_VERSION = '13.0.0'
# A final or pre-release number as PyPI spells it; it becomes a pip
# requirement, so nothing else may pass.
VERSION_RE = re.compile(r'^[0-9]+(\.[0-9]+)*((a|b|rc)[0-9]+)?$')
SUITE = 'bookworm'
KERNEL_META_PACKAGE = 'linux-image-amd64'
KERNEL_NAME = 'ipa.kernel'
INITRAMFS_NAME = 'ipa.initramfs'
RECIPE_NAME = 'recipe.json'
LOG_NAME = 'build.log'

# Ironic's conductor un-zstds every file it downloads, deploy ramdisks
# included (unless [conductor] disable_zstandard_decompression = True): a
# virtual media ISO then holds a ~330 MB initrd that a 1024 MiB guest
# cannot unpack. gzip is left alone.
# pigz writes gzip on every core.
COMPRESSIONS = {
    'gzip': ('pigz', '-6'),
    'zstd': ('zstd', '-q', '-T0', '-10'),
}
COMPRESSOR_PACKAGES = {'pigz': 'pigz', 'zstd': 'zstd'}
DEFAULT_COMPRESSION = 'gzip'

# What ironic-python-agent runs: fuser (psmisc) for prepare_image, hexdump
# (bsdextrautils) for the disk identifier, the partition, file system and
# RAID tools, udev, DHCP; busybox for poweroff/reboot without an init
# system.
PACKAGES = (
    'bsdextrautils', 'busybox', 'ca-certificates', 'dmidecode', 'dosfstools',
    'e2fsprogs', 'efibootmgr', 'ethtool', 'file', 'gdisk', 'hdparm',
    'iproute2', 'isc-dhcp-client', 'kmod', 'lshw', 'mdadm', 'nvme-cli',
    'parted', 'pciutils', 'procps', 'psmisc', 'python3', 'python3-venv',
    'qemu-utils', 'smartmontools', 'udev', 'util-linux', 'util-linux-extra',
    'xfsprogs',
)
# Documentation and translations are never read in the ramdisk.
PATH_EXCLUDES = ('/usr/share/doc/*', '/usr/share/info/*',
                 '/usr/share/lintian/*', '/usr/share/locale/*',
                 '/usr/share/man/*')

# The devices QEMU and libvirt give a domain (disks, CD-ROMs, NICs, the
# firmware config), the file systems IPA reads or writes, software RAID.
# Their dependencies come along.
MODULES = (
    '8139cp', 'ahci', 'ata_generic', 'ata_piix', 'cdrom', 'crc32c_generic',
    'crc32c_intel', 'dm_mod', 'e1000', 'e1000e', 'efivarfs', 'ext4',
    'isofs', 'loop', 'md_mod', 'ne2k_pci', 'nls_ascii', 'nls_cp437',
    'nls_iso8859_1', 'nvme', 'qemu_fw_cfg', 'raid0', 'raid1', 'sd_mod', 'sg',
    'sr_mod', 'udf', 'vfat', 'virtio_blk', 'virtio_console', 'virtio_net',
    'virtio_pci', 'virtio_rng', 'virtio_scsi', 'xfs',
)

INIT = r"""#!/bin/sh
# /init of the ironic-libvirt deploy ramdisk, PID 1 (no systemd): mount the
# kernel file systems, start udev, configure every NIC with DHCP, then run
# ironic-python-agent, again whenever it exits. Its output and the agent's
# log go to every console of the kernel command line (console=ttyS0 gives
# a serial log to read), in any order of console= arguments.
export PATH=/opt/ipa/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/lock /run/udev /tmp /var/lib/dhcp /var/log
chmod 1777 /tmp
if [ -d /sys/firmware/efi/efivars ]; then
    mount -t efivarfs efivarfs /sys/firmware/efi/efivars
fi
echo ipa-ramdisk > /proc/sys/kernel/hostname
exec </dev/null

# One line: the console= devices, e.g. "ttyS0 tty0".
read -r ACTIVE </sys/class/tty/console/active
CONSOLES=
for c in $ACTIVE; do
    [ -c "/dev/$c" ] && CONSOLES="$CONSOLES /dev/$c"
done
[ -n "$CONSOLES" ] || CONSOLES=/dev/console

# Copy standard input to every console. Only tee opens them: PID 1 takes
# no controlling terminal.
log() {
    # shellcheck disable=SC2086  # one word per console
    tee $CONSOLES >/dev/null
}

say() {
    echo "ipa-init: $* at uptime $(cut -d' ' -f1 /proc/uptime)s" | log
}

say "consoles:$CONSOLES"
# Daemons keep their output open: a pipe to log would never end.
/lib/systemd/systemd-udevd --daemon --resolve-names=never >/dev/null 2>&1
{
    udevadm trigger --type=subsystems --action=add
    udevadm trigger --type=devices --action=add
    udevadm settle --timeout=60
} 2>&1 | log
say "udev settled"

ip link set lo up
for n in /sys/class/net/*; do
    i=${n##*/}
    [ "$i" = lo ] && continue
    ip link set "$i" up
    dhclient -4 -1 -pf "/run/dhclient.$i.pid" \
        -lf "/var/lib/dhcp/dhclient.$i.leases" "$i" \
        >"/run/dhclient.$i.log" 2>&1 &
done
wait
ip -br addr 2>&1 | log
say "network configured"

while :; do
    say "starting ironic-python-agent"
    ironic-python-agent 2>&1 | log
    say "ironic-python-agent exited, starting it again in 5 s"
    sleep 5
done
"""

# No init system to ask: sync, then busybox makes the reboot(2) call.
POWEROFF = r"""#!/bin/sh
# poweroff and reboot of the ironic-libvirt deploy ramdisk (no init system).
sync
case "${0##*/}" in
    reboot) exec busybox reboot -f ;;
    *) exec busybox poweroff -f ;;
esac
"""

# Needed to build, never at run time: usrmerge (done) and the Perl it
# pulls in; what made the venv. Their removal shrinks the ramdisk by 15%.
UNUSED_PACKAGES = (
    'usrmerge', 'libfile-find-rule-perl', 'libnumber-compare-perl',
    'libtext-glob-perl', 'perl', 'libperl5.36', 'perl-modules-5.36',
    'python3-venv', 'python3.11-venv', 'python3-pip-whl',
    'python3-setuptools-whl',
)
# apt's state, the kernel's place (ipa.kernel is apart), udev's hardware
# database sources (hwdb.bin is compiled) and glibc's iconv modules.
UNUSED_PATHS = ('/boot', '/usr/lib/udev/hwdb.d',
                '/usr/lib/x86_64-linux-gnu/gconv', '/var/cache/apt',
                '/var/lib/apt/lists')

# Host tools the build runs, with the Debian package to install.
TOOLS = {
    'mmdebstrap': 'mmdebstrap',
    'cpio': 'cpio',
    'apt-get': 'apt',
    'apt-cache': 'apt',
    'dpkg-deb': 'dpkg',
    'chroot': 'coreutils',
    'unshare': 'util-linux',
}
APT_SOURCE_FILES = ('/etc/apt/sources.list', '/etc/apt/sources.list.d')
DEFAULT_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt'
DEFAULT_INDEX_URL = 'https://pypi.org/simple'
# The root file system is built in memory when this tmpfs has room: dpkg's
# syncs and removing ~10k files cost more than the build on a busy disk.
SCRATCH_TMPFS = '/dev/shm'
SCRATCH_MIN_FREE = 2 * 1024 ** 3
NETWORK_TIMEOUT = 20
VENV = '/opt/ipa'
# Within the chroot; removed before packing.
CHROOT_CA = '/tmp/build-ca.crt'
CHROOT_KERNEL = '/tmp/kernel'


class BuildError(Exception):
    """The ramdisk cannot be built; the message says why and what to do."""


def _builder_digest():
    return hashlib.sha256(pathlib.Path(__file__).read_bytes()).hexdigest()


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Everything that decides what a build produces."""

    ipa_version: str
    kernel_package: str
    kernel_version: str
    compression: str = DEFAULT_COMPRESSION
    suite: str = SUITE
    packages: tuple = PACKAGES
    modules: tuple = MODULES
    init: str = INIT
    poweroff: str = POWEROFF
    builder: str = dataclasses.field(default_factory=_builder_digest)

    def key(self):
        """A short hex digest of the recipe: the cache entry's name."""
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_cache_dir():
    """The cache directory: ``$IRONIC_LIBVIRT_RAMDISK_CACHE`` or default."""
    return pathlib.Path(os.environ.get(CACHE_DIR_ENV) or DEFAULT_CACHE_DIR)


def _apt_cache(*args):
    try:
        result = subprocess.run(('apt-cache',) + args, capture_output=True,
                                text=True)
    except FileNotFoundError:
        raise BuildError('apt-cache not found: the builder needs a Debian '
                         'host with apt')
    return result.stdout if result.returncode == 0 else ''


def kernel_package():
    """The kernel package apt would install now, with its version.

    Read from this machine's apt lists (no network): the kernel the recipe
    names is the one ``apt-get download`` then fetches.

    :returns: (package name, version), e.g. ('linux-image-6.1.0-50-amd64',
        '6.1.176-1').
    :raises: BuildError if apt knows no such package.
    """
    match = re.search(r'Depends: (linux-image-\S+)',
                      _apt_cache('depends', KERNEL_META_PACKAGE))
    version = match and re.search(
        r'^Version: (\S+)$',
        _apt_cache('show', '--no-all-versions', match.group(1)), re.M)
    if not version:
        raise BuildError('apt knows no %s package: run apt-get update (with '
                         'Debian %s in the apt sources)'
                         % (KERNEL_META_PACKAGE, SUITE))
    return match.group(1), version.group(1)


def check_ipa_version(version):
    """:raises: BuildError unless version is a release number (13.0.0)."""
    if not VERSION_RE.match(version):
        raise BuildError('%r is not a release number of ironic-python-agent '
                         '(like %s)' % (version, DEFAULT_IPA_VERSION))
    return version


def make_recipe(ipa_version=None, compression=None):
    """The recipe of a build with these choices and today's kernel.

    :raises: BuildError if the IPA version is malformed, the kernel package
        is unknown to apt, or the compression is not one of COMPRESSIONS.
    """
    ipa_version = check_ipa_version(ipa_version or DEFAULT_IPA_VERSION)
    compression = compression or DEFAULT_COMPRESSION
    if compression not in COMPRESSIONS:
        raise BuildError('unknown compression %s: use one of %s'
                         % (compression, ', '.join(sorted(COMPRESSIONS))))
    package, version = kernel_package()
    return Recipe(ipa_version=ipa_version,
                  kernel_package=package, kernel_version=version,
                  compression=compression)


def build(output_dir, ipa_version=None, cache_dir=None, progress=print,
          compression=None):
    """Build (or take from the cache) a deploy ramdisk into output_dir.

    :param output_dir: directory that receives ipa.kernel and
        ipa.initramfs (created if missing).
    :param ipa_version: ironic-python-agent release on PyPI; default
        DEFAULT_IPA_VERSION.
    :param cache_dir: where built ramdisks are kept; default
        default_cache_dir().
    :param progress: called with one line of text per stage.
    :param compression: 'gzip' (default) or 'zstd'.
    :returns: (kernel path, initramfs path) in output_dir.
    :raises: BuildError when it cannot be built; the message says what to
        do.
    """
    return build_recipe(make_recipe(ipa_version, compression), output_dir,
                        cache_dir=cache_dir, progress=progress)


def build_recipe(recipe, output_dir, cache_dir=None, progress=print):
    """Like build(), for a given Recipe.

    :raises: BuildError when it cannot be built.
    """
    cache_dir = pathlib.Path(cache_dir or default_cache_dir())
    output_dir = pathlib.Path(output_dir)
    clock = _Clock(progress)
    key = recipe.key()
    entry = cache_dir / key
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        output_dir.mkdir(parents=True, exist_ok=True)
        lock = open(cache_dir / ('.%s.lock' % key), 'w')
    except OSError as exc:
        raise BuildError('cannot write to %s: %s; run as root or choose '
                         'another --cache-dir / --output' % (
                             exc.filename, exc.strerror or exc))
    # One build per recipe at a time; a second caller waits and reuses it.
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            clock.say('waiting for another build of recipe %s' % key)
            fcntl.flock(lock, fcntl.LOCK_EX)
        if (entry / RECIPE_NAME).is_file():
            clock.say('reusing the cached ramdisk %s (recipe %s)'
                      % (entry, key))
        else:
            clock.say('building recipe %s: IPA %s, kernel %s %s, %s into %s'
                      % (key, recipe.ipa_version, recipe.kernel_package,
                         recipe.kernel_version, recipe.compression, entry))
            _Build(recipe, entry, clock).run()
    return tuple(_publish(entry / name, output_dir / name)
                 for name in (KERNEL_NAME, INITRAMFS_NAME))


def _publish(source, target):
    """Copy a cached file to target, replacing it atomically."""
    partial = target.with_name('.%s.partial' % target.name)
    try:
        shutil.copyfile(source, partial)
        os.replace(partial, target)
    except OSError as exc:
        raise BuildError('cannot write %s: %s' % (target,
                                                  exc.strerror or exc))
    return target


class _Clock:
    """Progress lines with the seconds elapsed since the start."""

    def __init__(self, progress):
        self._progress = progress
        self._start = time.monotonic()

    def say(self, text):
        self._progress('[%6.1fs] %s' % (time.monotonic() - self._start,
                                        text))


def check_root():
    """:raises: BuildError unless running as root."""
    if os.geteuid() != 0:
        raise BuildError('building a ramdisk needs root (mmdebstrap, chroot '
                         'and mounts): run it as root, e.g. with sudo')


def _tool_path():
    """PATH and the sbin directories, where chroot is.

    A user's PATH (or one kept by sudo) may lack them.
    """
    return os.pathsep.join((os.environ.get('PATH', os.defpath), '/usr/sbin',
                            '/sbin'))


def check_tools(compression):
    """:raises: BuildError naming the first missing tool and its package."""
    tools = dict(TOOLS)
    compressor = COMPRESSIONS[compression][0]
    tools[compressor] = COMPRESSOR_PACKAGES[compressor]
    for tool, package in tools.items():
        if shutil.which(tool, path=_tool_path()) is None:
            raise BuildError('%s not found: apt-get install %s'
                             % (tool, package))


def apt_sources():
    """This machine's apt source files: what mmdebstrap reads.

    :returns: a list of paths.
    """
    found = []
    for name in APT_SOURCE_FILES:
        path = pathlib.Path(name)
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir()
                                if p.suffix in ('.list', '.sources')))
        elif path.is_file():
            found.append(path)
    return found


def archive_urls(sources):
    """The archive URLs of apt source files (one-line and deb822 style)."""
    urls = []
    for path in sources:
        for line in pathlib.Path(path).read_text().splitlines():
            words = line.split('#')[0].split()
            if words[:1] == ['deb']:
                urls.extend(w for w in words[1:3] if '://' in w)
            elif words[:1] == ['URIs:']:
                urls.extend(words[1:])
    return urls


def host_ca_bundle():
    """The CA bundle this machine trusts for HTTPS.

    It is also copied into the chroot: this host may intercept TLS with a
    CA of its own.
    """
    for variable in ('PIP_CERT', 'REQUESTS_CA_BUNDLE', 'SSL_CERT_FILE'):
        path = os.environ.get(variable)
        if path and os.path.isfile(path):
            return path
    return DEFAULT_CA_BUNDLE


def index_url():
    """PyPI, or the index pip is told to use (``PIP_INDEX_URL``)."""
    return (os.environ.get('PIP_INDEX_URL') or DEFAULT_INDEX_URL).rstrip('/')


def _get(url, what, fix):
    context = ssl.create_default_context(cafile=host_ca_bundle())
    try:
        with urllib.request.urlopen(url, timeout=NETWORK_TIMEOUT,
                                    context=context) as response:
            return response.read().decode('utf-8', 'replace')
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, 'reason', None) or exc
        raise BuildError('cannot reach %s at %s (%s): %s'
                         % (what, url, reason, fix))


def check_archive(urls):
    """:raises: BuildError unless the first archive URL answers."""
    if not urls:
        raise BuildError('no apt sources in %s: add Debian %s'
                         % (' or '.join(APT_SOURCE_FILES), SUITE))
    _get('%s/dists/%s/Release' % (urls[0].rstrip('/'), SUITE),
         'the Debian archive', 'the build downloads packages from it; '
         'check the network and the apt sources')


def check_pypi(ipa_version, index=None):
    """:raises: BuildError unless the index has this IPA release."""
    index = index or index_url()
    page = _get('%s/ironic-python-agent/' % index, 'the Python package '
                'index', 'the build installs ironic-python-agent from it; '
                'check the network (or PIP_INDEX_URL)')
    if not re.search(r'ironic[_-]python[_-]agent-%s(-py|\.tar)'
                     % re.escape(ipa_version), page):
        raise BuildError('ironic-python-agent %s is not on %s: choose a '
                         'released version with --ipa-version'
                         % (ipa_version, index))


def module_closure(modules_dir, wanted):
    """The module files needed for the wanted modules, dependencies first.

    :param modules_dir: /lib/modules/<version> after depmod.
    :param wanted: module names.
    :returns: relative paths (kernel/...ko) in modules.dep.
    :raises: BuildError for a module neither in modules.dep nor built in.
    """
    modules_dir = pathlib.Path(modules_dir)

    def name_of(path):
        return path.rsplit('/', 1)[-1].split('.ko')[0].replace('-', '_')

    deps = {}
    for line in (modules_dir / 'modules.dep').read_text().splitlines():
        path, _, needs = line.partition(':')
        deps[name_of(path)] = (path, needs.split())
    builtin = set()
    builtin_file = modules_dir / 'modules.builtin'
    if builtin_file.is_file():
        builtin = {name_of(p) for p in builtin_file.read_text().split()}
    softdeps = {}
    softdep_file = modules_dir / 'modules.softdep'
    if softdep_file.is_file():
        for line in softdep_file.read_text().splitlines():
            words = line.split()
            if words[:1] == ['softdep'] and len(words) > 2:
                softdeps[words[1].replace('-', '_')] = [
                    w for w in words[2:] if not w.endswith(':')]
    found = []
    seen = set()

    def visit(name, required):
        name = name.replace('-', '_')
        if name in seen:
            return
        seen.add(name)
        if name not in deps:
            if required and name not in builtin:
                raise BuildError('kernel module %s is not in %s: update '
                                 'MODULES of the builder' % (name,
                                                             modules_dir))
            return
        path, needs = deps[name]
        for dep in needs:
            visit(name_of(dep), True)
        for soft in softdeps.get(name, ()):
            visit(soft, False)
        found.append(path)

    for name in wanted:
        visit(name, True)
    return found


def _scratch_dir(fallback):
    """SCRATCH_TMPFS if it can hold a root file system, else fallback."""
    try:
        stat = os.statvfs(SCRATCH_TMPFS)
    except OSError:
        return fallback
    if (stat.f_flag & os.ST_NOEXEC
            or stat.f_bavail * stat.f_frsize < SCRATCH_MIN_FREE):
        return fallback
    return pathlib.Path(SCRATCH_TMPFS)


class _Build:
    """One build of a recipe into a cache entry."""

    def __init__(self, recipe, entry, clock):
        self.recipe = recipe
        self.entry = entry
        self.clock = clock
        # Artifacts and the log go to the cache's file system, the root
        # file system to scratch (in memory if possible).
        self.work = entry.with_name('.%s.build' % entry.name)
        self.scratch = _scratch_dir(self.work) / ('ironic-libvirt-ramdisk-%s'
                                                  % entry.name)
        self.rootfs = self.scratch / 'rootfs'
        self.log = self.work / LOG_NAME

    def run(self):
        check_tools(self.recipe.compression)
        check_root()
        sources = apt_sources()
        check_archive(archive_urls(sources))
        check_pypi(self.recipe.ipa_version)
        for path in (self.work, self.scratch):
            # What a killed build left behind.
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True)
        try:
            self.stage('rootfs', self.make_rootfs, sources)
            self.stage('kernel', self.add_kernel)
            self.stage('IPA venv', self.install_ipa)
            self.stage('init', self.add_init)
            self.stage('pack', self.pack)
        finally:
            shutil.rmtree(self.scratch, ignore_errors=True)
        self.finish()

    def stage(self, name, func, *args):
        self.clock.say('%s ...' % name)
        detail = func(*args)
        self.clock.say('%s done%s' % (name, ': %s' % detail if detail
                                      else ''))

    def execute(self, *cmd, env=None, cwd=None, stdout=None, name=None):
        """Run a command, its output into the build log.

        :param name: the command's name in an error; default cmd[0].
        :raises: BuildError naming the command and its last output line.
        """
        with open(self.log, 'a') as log:
            log.write('$ %s\n' % ' '.join(cmd))
            log.flush()
            result = subprocess.run(
                cmd, stdout=stdout or log, stderr=log, cwd=cwd,
                env=env or dict(os.environ, PATH=_tool_path()),
                stdin=subprocess.DEVNULL)
        if result.returncode:
            lines = [line for line in self.log.read_text(
                errors='replace').splitlines() if line.strip()]
            raise BuildError('%s failed (exit code %d): %s; the full log is '
                             '%s' % (name or cmd[0], result.returncode,
                                     lines[-1] if lines else '', self.log))

    def chroot(self, *cmd, stdout=None):
        """Run a command in the rootfs, /proc, /sys and /dev mounted.

        The mounts live in a mount namespace of the command's own: they
        vanish with it, whatever happens to the build. The environment is
        a clean one: the host's pip and TLS variables name host paths.
        """
        ca = CHROOT_CA
        env = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'HOME': '/root',
               'LANG': 'C.UTF-8', 'PIP_CERT': ca, 'REQUESTS_CA_BUNDLE': ca,
               'SSL_CERT_FILE': ca, 'PIP_DISABLE_PIP_VERSION_CHECK': '1',
               'PIP_NO_CACHE_DIR': '1', 'PIP_INDEX_URL': index_url()}
        script = ('mount -t proc proc "$0/proc" && '
                  'mount -t sysfs sysfs "$0/sys" && '
                  'mount --rbind /dev "$0/dev" && exec chroot "$0" "$@"')
        self.execute('unshare', '--mount', '--propagation', 'private',
                     'sh', '-c', script, str(self.rootfs), *cmd, env=env,
                     stdout=stdout, name=os.path.basename(cmd[0]))

    def make_rootfs(self, sources):
        excludes = ['--dpkgopt=path-exclude=%s' % p for p in PATH_EXCLUDES]
        # A throw-away tree: dpkg need not sync every file.
        self.execute('mmdebstrap', '--variant=minbase', '--mode=root',
                     '--dpkgopt=force-unsafe-io',
                     '--include=%s' % ','.join(self.recipe.packages),
                     *excludes, self.recipe.suite, str(self.rootfs),
                     *map(str, sources))
        return '%d packages' % len(self.recipe.packages)

    def add_kernel(self):
        download = self.scratch / 'deb'
        download.mkdir()
        self.execute('apt-get', 'download', '-q', '%s=%s' % (
            self.recipe.kernel_package, self.recipe.kernel_version),
            cwd=download)
        debs = list(download.glob('*.deb'))
        extracted = self.rootfs / CHROOT_KERNEL.lstrip('/')
        self.execute('dpkg-deb', '-x', str(debs[0]), str(extracted))
        versions = os.listdir(extracted / 'lib' / 'modules')
        if len(versions) != 1:
            raise BuildError('%s holds modules of %s kernels, expected one'
                             % (debs[0].name, len(versions)))
        version = versions[0]
        shutil.copyfile(extracted / 'boot' / ('vmlinuz-%s' % version),
                        self.work / KERNEL_NAME)
        # depmod of the rootfs (kmod) indexes the whole module tree.
        self.chroot('depmod', '-b', CHROOT_KERNEL, version)
        source = extracted / 'lib' / 'modules' / version
        target = self.rootfs / 'lib' / 'modules' / version
        wanted = module_closure(source, self.recipe.modules)
        for path in wanted:
            (target / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / path, target / path)
        for name in ('modules.order', 'modules.builtin',
                     'modules.builtin.modinfo'):
            if (source / name).is_file():
                shutil.copyfile(source / name, target / name)
        shutil.rmtree(extracted)
        self.chroot('depmod', version)
        return '%s, %d modules' % (version, len(wanted))

    def install_ipa(self):
        shutil.copyfile(host_ca_bundle(),
                        self.rootfs / CHROOT_CA.lstrip('/'))
        shutil.copyfile('/etc/resolv.conf', self.rootfs / 'etc/resolv.conf')
        self.chroot('python3', '-m', 'venv', VENV)
        self.chroot('%s/bin/pip' % VENV, 'install', '-q',
                    'ironic-python-agent==%s' % self.recipe.ipa_version)
        with open(self.work / 'pip-freeze.txt', 'w') as freeze:
            self.chroot('%s/bin/pip' % VENV, 'freeze', stdout=freeze)
        # A broken dependency set shows here rather than in the guest.
        self.chroot('%s/bin/python' % VENV, '-c',
                    'import ironic_python_agent.agent')
        count = len((self.work / 'pip-freeze.txt').read_text().split())
        return 'ironic-python-agent %s, %d Python packages' % (
            self.recipe.ipa_version, count)

    def add_init(self):
        root = self.rootfs
        (root / 'init').write_text(self.recipe.init)
        (root / 'init').chmod(0o755)
        poweroff = root / 'usr/sbin/poweroff'
        poweroff.write_text(self.recipe.poweroff)
        poweroff.chmod(0o755)
        (root / 'usr/sbin/reboot').symlink_to('poweroff')
        (root / 'etc/hostname').write_text('ipa-ramdisk\n')
        (root / 'etc/resolv.conf').write_text('')
        (root / CHROOT_CA.lstrip('/')).unlink()
        return self.trim()

    def trim(self):
        """Drop what the ramdisk never uses at run time."""
        # init-system-helpers depends on usrmerge | usr-is-merged: a
        # dependency of package management, which the ramdisk never runs.
        self.chroot('dpkg', '--purge', '--force-depends', *UNUSED_PACKAGES)
        root = self.rootfs
        site = next((root / VENV.lstrip('/') / 'lib').glob('python3*'))
        for path in ([root / p.lstrip('/') for p in UNUSED_PATHS]
                     + [site / 'site-packages/pip']
                     + list(site.glob('site-packages/*/tests'))):
            shutil.rmtree(path, ignore_errors=True)
        for pip in (root / VENV.lstrip('/') / 'bin').glob('pip*'):
            pip.unlink()
        return 'purged %d packages' % len(UNUSED_PACKAGES)

    def pack(self):
        names = []
        for top, dirs, files in os.walk(self.rootfs):
            dirs.sort()
            rel = os.path.relpath(top, self.rootfs)
            names.extend(os.path.normpath(os.path.join(rel, n))
                         for n in dirs + sorted(files))
        target = self.work / INITRAMFS_NAME
        with open(self.log, 'a') as log, open(target, 'wb') as out:
            compress = subprocess.Popen(
                COMPRESSIONS[self.recipe.compression], stdin=subprocess.PIPE,
                stdout=out, stderr=log)
            cpio = subprocess.Popen(
                ('cpio', '--create', '--format=newc', '--null', '--quiet',
                 '--reproducible'), cwd=self.rootfs, stdin=subprocess.PIPE,
                stdout=compress.stdin, stderr=log)
            compress.stdin.close()
            cpio.communicate(b''.join(n.encode() + b'\0' for n in names))
            compress.wait()
        if cpio.returncode or compress.returncode:
            raise BuildError('packing the initramfs failed (cpio exit code '
                             '%s, %s exit code %s); the full log is %s'
                             % (cpio.returncode, self.recipe.compression,
                                compress.returncode, self.log))
        return '%d files, %.1f MB' % (len(names),
                                      target.stat().st_size / 1e6)

    def finish(self):
        """Move the artifacts into the cache entry."""
        info = dataclasses.asdict(self.recipe)
        info['built'] = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
        info['python_packages'] = (
            self.work / 'pip-freeze.txt').read_text().split()
        info['sizes'] = {name: (self.work / name).stat().st_size
                         for name in (KERNEL_NAME, INITRAMFS_NAME)}
        (self.work / RECIPE_NAME).write_text(json.dumps(info, indent=2))
        if self.entry.exists():
            shutil.rmtree(self.entry)
        os.rename(self.work, self.entry)
        self.clock.say('ramdisk %s: kernel %.1f MB, initramfs %.1f MB' % (
            self.entry, info['sizes'][KERNEL_NAME] / 1e6,
            info['sizes'][INITRAMFS_NAME] / 1e6))
