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

"""The machine under the harness: packages, capabilities, ports, waiting."""

import os
import pathlib
import shutil
import socket
import subprocess
import time

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
BINDEP = REPO_ROOT / 'bindep.txt'

# Binaries the harness runs; each comes from a package in bindep.txt.
REQUIRED_BINARIES = (
    'libvirtd', 'virtlogd', 'virsh', 'virt-ssh-helper', 'qemu-system-x86_64',
    'sshd', 'ssh-keygen', 'ssh', 'saslpasswd2', 'certtool',
    'unshare', 'nsenter', 'mount',
)

# Keeps package scripts from starting system services while installing.
_POLICY_RC_D = pathlib.Path('/usr/sbin/policy-rc.d')


class HarnessError(Exception):
    """A real component could not be set up or did not come up."""


def _platforms():
    """bindep platform selectors this machine matches."""
    names = {'platform:dpkg'}
    try:
        text = pathlib.Path('/etc/os-release').read_text()
    except OSError:
        return names
    for line in text.splitlines():
        key, _, value = line.partition('=')
        if key in ('ID', 'ID_LIKE'):
            names.update('platform:' + v for v in value.strip('"').split())
    return names


def _selected(selectors, profiles):
    """Whether a bindep line with these selectors applies here."""
    platforms = _platforms()
    if {s[1:] for s in selectors if s.startswith('!')} & (
            platforms | set(profiles)):
        return False
    wanted = [s for s in selectors if not s.startswith('!')]
    wanted_platforms = [s for s in wanted if s.startswith('platform:')]
    wanted_profiles = [s for s in wanted if not s.startswith('platform:')]
    return ((not wanted_platforms or platforms & set(wanted_platforms))
            and (not wanted_profiles
                 or any(p in profiles for p in wanted_profiles)))


def bindep_packages(profiles=('test',), path=BINDEP):
    """Package names bindep.txt lists for dpkg and the given profiles."""
    packages = []
    for line in pathlib.Path(path).read_text().splitlines():
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        name, _, rest = line.partition(' ')
        selectors = rest.strip().strip('[]').split()
        if _selected(selectors, profiles):
            packages.append(name)
    return packages


def missing_packages(packages):
    """The subset of packages that dpkg does not report as installed."""
    if not packages:
        return []
    result = subprocess.run(
        ['dpkg-query', '-W', '-f=${Package} ${Status}\n', *packages],
        capture_output=True, text=True)
    installed = {line.split()[0] for line in result.stdout.splitlines()
                 if line.endswith(' installed')}
    return [p for p in packages if p not in installed]


def _apt_get(*args):
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    return subprocess.run(['apt-get', '-q', '-y', *args], env=env,
                          capture_output=True, text=True)


def ensure_packages(profiles=('test',), path=BINDEP):
    """Install the bindep.txt packages that are missing; return them.

    Quick and without side effects when everything is installed. Package
    scripts are kept from starting services (a temporary policy-rc.d when
    the machine has none): the harness starts its own private daemons.
    """
    missing = missing_packages(bindep_packages(profiles, path))
    if not missing:
        return []
    install = ('install', '--no-install-recommends', *missing)
    own_policy = not _POLICY_RC_D.exists()
    if own_policy:
        _POLICY_RC_D.write_text('#!/bin/sh\nexit 101\n')
        _POLICY_RC_D.chmod(0o755)
    try:
        lists = pathlib.Path('/var/lib/apt/lists')
        if not any(lists.glob('*_Packages*')):
            _apt_get('update')
        result = _apt_get(*install)
        if result.returncode:
            _apt_get('update')
            result = _apt_get(*install)
    finally:
        if own_policy:
            _POLICY_RC_D.unlink()
    if result.returncode:
        raise HarnessError('apt-get install %s failed:\n%s'
                           % (' '.join(missing), result.stderr[-2000:]))
    return missing


def _can_unshare_mounts():
    result = subprocess.run(
        ['unshare', '--mount', '--propagation', 'private', 'true'],
        capture_output=True)
    return result.returncode == 0


def skip_reason():
    """None if real components can run here, else why they cannot."""
    if os.geteuid() != 0:
        return 'real libvirtd/QEMU tests need root'
    if not (shutil.which('apt-get') and shutil.which('dpkg-query')):
        return 'real libvirtd/QEMU tests need a Debian-like system (apt/dpkg)'
    try:
        ensure_packages()
    except HarnessError as exc:
        return str(exc)
    missing = [b for b in REQUIRED_BINARIES
               if not shutil.which(b, path=os.environ.get('PATH', '')
                                   + ':/usr/sbin:/sbin')]
    if missing:
        return 'missing binaries after install: %s' % ', '.join(missing)
    if not _can_unshare_mounts():
        return 'cannot create a private mount namespace (CAP_SYS_ADMIN)'
    return None


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout, what, interval=0.05):
    """Poll predicate until it returns a true value, which is returned.

    :raises HarnessError: naming ``what`` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise HarnessError('timed out after %.1f s waiting for %s'
                               % (timeout, what))
        time.sleep(interval)


def port_open(port, host='127.0.0.1'):
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def unix_socket_open(path):
    """Whether something accepts connections on the unix socket path."""
    with socket.socket(socket.AF_UNIX) as sock:
        try:
            sock.connect(str(path))
            return True
        except OSError:
            return False


def _tcp_inodes(local_port, remote_port):
    """Inodes of IPv4/IPv6 TCP sockets local_port -> remote_port."""
    inodes = set()
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        try:
            with open(table) as rows:
                next(rows)
                for row in rows:
                    fields = row.split()
                    local = int(fields[1].rsplit(':', 1)[1], 16)
                    remote = int(fields[2].rsplit(':', 1)[1], 16)
                    if (local, remote) == (local_port, remote_port):
                        inodes.add(fields[9])
        except FileNotFoundError:
            pass
    return inodes


def tcp_client_pid(local_port, remote_port):
    """The PID holding the TCP connection local_port -> remote_port.

    What ``ss -tp`` shows: the process with the socket's inode among its
    file descriptors. None if no process holds it (any more).
    """
    inodes = {'socket:[%s]' % inode
              for inode in _tcp_inodes(local_port, remote_port)}
    if not inodes:
        return None
    for entry in pathlib.Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = list((entry / 'fd').iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in inodes:
                    return int(entry.name)
            except OSError:
                pass
    return None
