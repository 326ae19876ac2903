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

"""A private sshd on 127.0.0.1 that lets one generated key in as root."""

import os
import pathlib
import subprocess

from tests.harness import process
from tests.harness import system


class _KnownHostsGuard:
    """Puts the ssh client's known_hosts back as it was.

    libvirt's ``no_verify=1`` makes ssh accept and record unknown host
    keys in ~/.ssh/known_hosts, and no URI parameter changes that file
    for the ssh transport; the harness must leave ~/.ssh untouched.
    """

    def __init__(self):
        self.ssh_dir = pathlib.Path(os.path.expanduser('~/.ssh'))
        self.path = self.ssh_dir / 'known_hosts'
        self.dir_existed = self.ssh_dir.exists()
        self.content = self.path.read_bytes() if self.path.exists() else None

    def restore(self):
        if self.content is not None:
            self.path.write_bytes(self.content)
            return
        self.path.unlink(missing_ok=True)
        if not self.dir_existed and self.ssh_dir.exists():
            self.ssh_dir.rmdir()


class Sshd:
    """sshd with its own config, host key, client key and authorized_keys.

    ``command_prefix`` runs sshd through another command, e.g. nsenter
    into the private mount namespace of a harness libvirtd so that
    ``virt-ssh-helper`` finds that libvirtd's socket. Attributes: ``port``,
    ``keyfile`` (the client's private key), ``dir``.
    """

    def __init__(self, base_dir, command_prefix=()):
        self.dir = pathlib.Path(base_dir)
        self.command_prefix = list(command_prefix)
        self.port = None
        self.keyfile = self.dir / 'id_ed25519'
        self.config = self.dir / 'sshd_config'
        self.pid_file = self.dir / 'sshd.pid'
        self.log_file = self.dir / 'sshd.log'
        self._proc = None
        self._known_hosts = None

    def _write_files(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        host_key = self.dir / 'ssh_host_ed25519_key'
        for key in (host_key, self.keyfile):
            if not key.exists():
                subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '',
                                '-C', 'ironic-libvirt-harness',
                                '-f', str(key)],
                               check=True, capture_output=True)
        authorized = self.dir / 'authorized_keys'
        authorized.write_text(
            pathlib.Path('%s.pub' % self.keyfile).read_text())
        self.port = system.free_port()
        # StrictModes would reject authorized_keys below a world-writable
        # /tmp; this sshd only ever accepts the key generated above.
        self.config.write_text('\n'.join([
            'Port %d' % self.port,
            'ListenAddress 127.0.0.1',
            'HostKey %s' % host_key,
            'PidFile %s' % self.pid_file,
            'AuthorizedKeysFile %s' % authorized,
            'StrictModes no',
            'UsePAM no',
            'PermitRootLogin prohibit-password',
            'PasswordAuthentication no',
            'KbdInteractiveAuthentication no',
            'AcceptEnv LANG LC_*',
            'Subsystem sftp internal-sftp',
            '']))

    def start(self, timeout=10):
        """Start sshd and wait until it accepts connections."""
        self._write_files()
        self._known_hosts = _KnownHostsGuard()
        pathlib.Path('/run/sshd').mkdir(mode=0o755, exist_ok=True)
        self._proc = process.spawn(
            self.command_prefix + ['/usr/sbin/sshd', '-D', '-f',
                                   str(self.config), '-E',
                                   str(self.log_file)],
            self.log_file)
        system.wait_for(
            lambda: (process.check_alive(self._proc, 'sshd', self.log_file)
                     and system.port_open(self.port)),
            timeout, 'sshd on 127.0.0.1:%d' % self.port)
        return self

    def stop(self):
        """Stop sshd (SIGTERM, then SIGKILL), restore known_hosts."""
        if self._proc is not None:
            process.terminate(self._proc)
            self._proc = None
        if self._known_hosts is not None:
            self._known_hosts.restore()
            self._known_hosts = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
