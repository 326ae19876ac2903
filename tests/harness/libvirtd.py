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

"""A private virtlogd + libvirtd (QEMU driver) for functional tests.

libvirtd's ``--config`` only covers libvirtd.conf: the QEMU driver always
reads /etc/libvirt/qemu.conf and keeps its state under /etc/libvirt/qemu,
/run/libvirt and /var/lib/libvirt, and libvirtd always finds virtlogd at
/run/libvirt/virtlogd-sock. So the daemons run in a private mount
namespace (``unshare --mount``) where directories of the harness's own
are bind-mounted over those paths. Nothing on the host is edited and a
system libvirtd, if any, is never seen. Host changes: empty mount points
(/run/libvirt, /var/lib/libvirt, /var/log/libvirt) are created when
missing, and /var/cache/libvirt stays shared: libvirt validates its QEMU
capabilities cache itself, and a private one costs a 4-5 s probe of QEMU
per run.

Inside the namespace /run/libvirt is the harness's ``run`` directory, so
the unix socket is reachable from the host as ``<base>/run/libvirt-sock``
and from the namespace at libvirt's default path, which is what
``virt-ssh-helper`` (run by the sshd that shares the namespace) uses.
"""

import os
import pathlib
import shlex
import shutil
import signal
import subprocess
import tempfile
import urllib.parse

from tests.harness import process
from tests.harness import sasl
from tests.harness import sshd
from tests.harness import system
from tests.harness import tls

# Host path -> harness subdirectory bind-mounted over it.
_PRIVATE_DIRS = {
    '/etc/libvirt': 'etc',
    '/run/libvirt': 'run',
    '/var/lib/libvirt': 'lib',
    '/var/log/libvirt': 'log',
}

_QEMU_CONF = '''\
user = "root"
group = "root"
security_driver = "none"
'''

SASL_USERNAME = 'ironic'
SASL_PASSWORD = 'libvirt-harness-secret'


def _conf_value(value):
    if isinstance(value, bool):
        return '1' if value else '0'
    if isinstance(value, (list, tuple)):
        return '[%s]' % ', '.join('"%s"' % v for v in value)
    return '"%s"' % value


class Libvirtd:
    """virtlogd, libvirtd and optionally sshd in a private namespace.

    :param base_dir: where config, state, sockets and logs go; a temporary
        directory (removed on stop) when None.
    :param tcp: listen on 127.0.0.1:``tcp_port`` with SASL (DIGEST-MD5).
    :param tls: listen on 127.0.0.1:``tls_port`` with certificates.
    :param ssh: start an sshd in the namespace for qemu+ssh.
    :param auth_tls: libvirtd's ``auth_tls``: "none" (the client
        certificate is enough) or "sasl".
    :param tls_files: a tls.TLSFiles to listen with instead of generating
        a throw-away CA (implies ``tls``); its ``client_dn_pattern`` is
        libvirtd's ``tls_allowed_dn_list``.
    :param netns: a started :class:`tests.harness.netns.NetNamespace` to
        run the daemons in (their TCP listeners, bridges and dnsmasq are
        then inside it; the unix socket stays reachable), or None.

    After start(): ``uri_unix``, ``uri_tcp``, ``uri_tls``, ``uri_ssh()``;
    ``socket``, ``tcp_port``, ``tls_port``; ``sasl_username`` and
    ``sasl_password``; ``sasl`` (sasl.Sasl), ``tls`` (tls.TLSFiles) and
    ``sshd`` (sshd.Sshd), None when not enabled; ``log_file``.
    """

    def __init__(self, base_dir=None, tcp=False, tls=False, ssh=False,
                 auth_tls='none', tls_files=None, netns=None):
        self.netns = netns
        self._own_base = base_dir is None
        self.base_dir = pathlib.Path(
            base_dir or tempfile.mkdtemp(prefix='ilv-harness-'))
        self._tcp, self._ssh = tcp, ssh
        self._tls = tls or tls_files is not None
        self._tls_files = tls_files
        self.auth_tls = auth_tls
        self.run_dir = self.base_dir / 'run'
        self.socket = self.run_dir / 'libvirt-sock'
        self.config = self.base_dir / 'etc' / 'libvirtd.conf'
        self.log_file = self.base_dir / 'libvirtd.log'
        self.virtlogd_log = self.base_dir / 'virtlogd.log'
        self.pid_file = self.base_dir / 'libvirtd.pid'
        self.tcp_port = self.tls_port = None
        self.sasl = self.tls = self.sshd = None
        self.sasl_username = SASL_USERNAME
        self.sasl_password = SASL_PASSWORD
        self._virtlogd = self._libvirtd = None
        self._mount_ns = None

    # URIs

    @property
    def uri_unix(self):
        """qemu:///system through the private unix socket."""
        return 'qemu:///system?socket=%s' % self.socket

    @property
    def uri_tcp(self):
        """qemu+tcp to the SASL-protected TCP listener."""
        return 'qemu+tcp://127.0.0.1:%d/system' % self.tcp_port

    @property
    def uri_tls(self):
        """qemu+tls with the generated client certificate."""
        return 'qemu+tls://127.0.0.1:%d/system?pkipath=%s' % (
            self.tls_port, self.tls.pki_dir)

    def uri_ssh(self, keyfile=None, user='root'):
        """qemu+ssh through the harness's sshd (its key by default)."""
        query = urllib.parse.urlencode({
            'keyfile': str(keyfile or self.sshd.keyfile),
            'no_verify': 1, 'no_tty': 1}, safe='/')
        return 'qemu+ssh://%s@127.0.0.1:%d/system?%s' % (
            user, self.sshd.port, query)

    @property
    def namespace_command(self):
        """Prefix running a command in the daemons' namespaces."""
        pid = self._virtlogd.pid
        return ['nsenter', '--mount=/proc/%d/ns/mnt' % pid,
                '--net=/proc/%d/ns/net' % pid, '--']

    # Setup

    def _write_config(self):
        for sub in _PRIVATE_DIRS.values():
            (self.base_dir / sub).mkdir(parents=True, exist_ok=True)
        etc = self.base_dir / 'etc'
        (etc / 'qemu.conf').write_text(_QEMU_CONF)
        (etc / 'virtlogd.conf').write_text('log_outputs = "3:stderr"\n')
        conf = {
            'unix_sock_dir': str(self.run_dir),
            'unix_sock_rw_perms': '0700',
            'auth_unix_ro': 'none',
            'auth_unix_rw': 'none',
            'log_outputs': '3:stderr',
            'listen_tcp': self._tcp,
            'listen_tls': self._tls,
        }
        if self._tcp or self._tls:
            conf['listen_addr'] = '127.0.0.1'
        if self._tcp:
            self.tcp_port = system.free_port()
            conf.update(tcp_port=str(self.tcp_port), auth_tcp='sasl')
        if self._tcp or self.auth_tls == 'sasl':
            self.sasl = sasl.Sasl(self.base_dir / 'sasl2')
            self.sasl.add_user(self.sasl_username, self.sasl_password)
        if self._tls:
            self.tls = (self._tls_files
                        or tls.make_pki(self.base_dir / 'pki'))
            self.tls_port = system.free_port()
            conf.update(tls_port=str(self.tls_port), auth_tls=self.auth_tls,
                        key_file=str(self.tls.key_file),
                        cert_file=str(self.tls.cert_file),
                        ca_file=str(self.tls.ca_file),
                        tls_allowed_dn_list=[self.tls.client_dn_pattern])
        self.config.write_text(''.join(
            '%s = %s\n' % (k, _conf_value(v)) for k, v in conf.items()))

    def _namespace_script(self):
        """Shell commands that set up the namespace, then exec virtlogd."""
        lines = ['set -e']
        for target, sub in _PRIVATE_DIRS.items():
            lines.append('mkdir -p %s' % target)
            lines.append('mount --bind %s %s'
                         % (shlex.quote(str(self.base_dir / sub)), target))
        lines.append('exec virtlogd -f %s -p %s' % (
            shlex.quote(str(self.base_dir / 'etc' / 'virtlogd.conf')),
            shlex.quote(str(self.base_dir / 'virtlogd.pid'))))
        return '\n'.join(lines)

    def start(self, timeout=20):
        """Start everything and wait until each part answers."""
        try:
            self._write_config()
            in_netns = self.netns.command() if self.netns else []
            self._virtlogd = process.spawn(
                in_netns + ['unshare', '--mount', '--propagation',
                            'private', '--', 'sh', '-c',
                            self._namespace_script()], self.virtlogd_log)
            system.wait_for(
                lambda: (process.check_alive(self._virtlogd, 'virtlogd',
                                             self.virtlogd_log)
                         and system.unix_socket_open(
                             self.run_dir / 'virtlogd-sock')),
                timeout, 'virtlogd socket')
            mount_ns = os.readlink('/proc/%d/ns/mnt' % self._virtlogd.pid)
            if mount_ns == os.readlink('/proc/self/ns/mnt'):
                raise system.HarnessError('virtlogd is not in a private '
                                          'mount namespace')
            self._mount_ns = mount_ns
            cmd = self.namespace_command + [
                'libvirtd', '--config', self.config,
                '--pid-file', self.pid_file]
            if self._tcp or self._tls:
                cmd.append('--listen')
            self._libvirtd_command = cmd
            self._start_libvirtd(timeout)
            if self._ssh:
                self.sshd = sshd.Sshd(self.base_dir / 'ssh',
                                      self.namespace_command).start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_libvirtd(self, timeout):
        self._libvirtd = process.spawn(
            self._libvirtd_command, self.log_file,
            env=self.sasl.env if self.sasl else None)
        system.wait_for(self._libvirtd_ready, timeout,
                        'libvirtd on %s' % self.socket)

    def restart_libvirtd(self, timeout=20):
        """Stop libvirtd and start it again; domains keep running.

        Clients' connections break, as when an operator restarts the
        daemon.
        """
        process.terminate(self._libvirtd)
        self._start_libvirtd(timeout)

    def stop_libvirtd(self):
        """Stop libvirtd (by PID) but not virtlogd.

        The hypervisor is unreachable; QEMU guests keep running.
        """
        process.terminate(self._libvirtd)

    def start_libvirtd(self, timeout=20):
        """Start libvirtd again after :meth:`stop_libvirtd`."""
        self._start_libvirtd(timeout)

    @property
    def admin_uri(self):
        """virt-admin's URI for this libvirtd's admin socket."""
        return 'libvirtd:///system?socket=%s' % (
            self.run_dir / 'libvirt-admin-sock')

    def tcp_client_ports(self):
        """Local ports of the clients connected over TCP.

        As libvirtd lists them (``virt-admin client-list`` and
        ``client-info`` through the admin socket).
        """
        ports = []
        for line in self._virt_admin('client-list', 'libvirtd').splitlines():
            fields = line.split()
            if len(fields) < 2 or not fields[0].isdigit():
                continue
            if fields[1] != 'tcp':
                continue
            info = self._virt_admin('client-info', 'libvirtd', fields[0])
            for row in info.splitlines():
                key, _, value = row.partition(':')
                if key.strip() == 'sock_addr':
                    # "127.0.0.1:41234"
                    ports.append(int(value.strip().rsplit(':', 1)[1]))
        return ports

    def _virt_admin(self, *args):
        result = subprocess.run(['virt-admin', '-c', self.admin_uri, *args],
                                capture_output=True, text=True, timeout=30)
        if result.returncode:
            raise system.HarnessError('virt-admin %s failed: %s'
                                      % (' '.join(args), result.stderr))
        return result.stdout

    def freeze(self):
        """Stop libvirtd with SIGSTOP: it hangs, its sockets stay open."""
        os.kill(self._libvirtd.pid, signal.SIGSTOP)

    def thaw(self):
        """Resume a frozen libvirtd."""
        os.kill(self._libvirtd.pid, signal.SIGCONT)

    def _libvirtd_ready(self):
        process.check_alive(self._libvirtd, 'libvirtd', self.log_file)
        port_open = self.netns.port_open if self.netns else system.port_open
        return (system.unix_socket_open(self.socket)
                and (not self._tcp or port_open(self.tcp_port))
                and (not self._tls or port_open(self.tls_port)))

    # Teardown

    def virsh(self, *args, timeout=30):
        """Run virsh against this libvirtd; return its stdout."""
        result = subprocess.run(
            ['virsh', '-q', '-c', self.uri_unix, *args],
            capture_output=True, text=True, timeout=timeout)
        if result.returncode:
            raise system.HarnessError('virsh %s failed: %s'
                                      % (' '.join(args), result.stderr))
        return result.stdout

    def cleanup_domains(self):
        """Destroy and undefine every domain.

        A destroy takes 1-2 s here (QEMU is slow to exit), so all running
        domains are destroyed at once.
        """
        destroys = [
            subprocess.Popen(['virsh', '-q', '-c', self.uri_unix, 'destroy',
                              name], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
            for name in self.virsh('list', '--name').split()]
        for proc in destroys:
            proc.wait(30)
        for name in self.virsh('list', '--all', '--name').split():
            self.virsh('undefine', '--nvram', name)

    def _namespace_pids(self):
        """PIDs of processes still in the daemons' mount namespace."""
        pids = []
        for entry in pathlib.Path('/proc').iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                try:
                    if os.readlink(entry / 'ns' / 'mnt') == self._mount_ns:
                        pids.append(int(entry.name))
                except OSError:
                    pass
        return pids

    def stop(self):
        """Clean up domains, stop every daemon by PID, remove base_dir."""
        try:
            if self._libvirtd is not None and self._libvirtd.poll() is None:
                self.cleanup_domains()
        finally:
            if self.sshd is not None:
                self.sshd.stop()
            for proc in (self._libvirtd, self._virtlogd):
                if proc is not None:
                    process.terminate(proc)
            # Anything left in the namespace (a QEMU libvirtd lost track
            # of) is the harness's own: kill it by PID.
            for pid in self._namespace_pids() if self._mount_ns else ():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self._libvirtd = self._virtlogd = self.sshd = None
            self._mount_ns = None
            if self._own_base:
                shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
