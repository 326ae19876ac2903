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

"""A private PostgreSQL server (Debian's package) for multi-conductor tests.

Debian's cluster tools (pg_ctlcluster, systemd units) are not used: the
harness runs ``initdb`` and ``postgres`` from /usr/lib/postgresql/*/bin
itself, with a data directory, a unix socket directory and a port of its
own, as the ``postgres`` OS user (PostgreSQL refuses to run as root).
The server listens on its unix socket only; authentication is ``trust``
for that socket, whose directory only root and ``postgres`` can enter.
"""

import glob
import os
import pathlib
import pwd
import shutil
import signal
import subprocess
import tempfile

from tests.harness import process
from tests.harness import system

OS_USER = 'postgres'
DATABASE = 'ironic'

# A throw-away test database: durability buys nothing, and fsync on this
# shared machine's disk would dominate every Ironic request.
_SERVER_SETTINGS = {
    'listen_addresses': '',
    'fsync': 'off',
    'synchronous_commit': 'off',
    'full_page_writes': 'off',
    # Each Ironic process has its own SQLAlchemy pool (oslo.db's default
    # max_pool_size 5 plus max_overflow 50).
    'max_connections': '400',
}


def binary_dir():
    """The newest /usr/lib/postgresql/<version>/bin holding ``postgres``.

    :raises: HarnessError if PostgreSQL is not installed.
    """
    found = sorted(glob.glob('/usr/lib/postgresql/*/bin/postgres'),
                   key=lambda p: int(p.split('/')[-3]))
    if not found:
        raise system.HarnessError(
            'PostgreSQL is not installed (bindep.txt: postgresql)')
    return pathlib.Path(found[-1]).parent


class Postgres:
    """A PostgreSQL server in a directory of its own; a context manager.

    After start(): ``url`` (SQLAlchemy URL for psycopg2), ``socket_dir``,
    ``port``, ``pid`` and ``log_file``.

    :param base_dir: parent directory for data, socket and log; a new
        directory in the system's temporary directory when None (it must
        be reachable by the ``postgres`` user, which pytest's per-user
        temporary directories are not), removed on stop.
    """

    def __init__(self, base_dir=None):
        self._own_base = base_dir is None
        self.base_dir = pathlib.Path(
            base_dir or tempfile.mkdtemp(prefix='ilv-postgres-'))
        self.data_dir = self.base_dir / 'data'
        self.socket_dir = self.base_dir / 'run'
        self.log_file = self.base_dir / 'postgres.log'
        self.port = None
        self._server = None

    @property
    def pid(self):
        """The postmaster's PID, None when stopped."""
        return self._server.pid if self._server is not None else None

    @property
    def url(self):
        """``postgresql+psycopg2://`` URL of the database, over the socket."""
        return ('postgresql+psycopg2://%s@/%s?host=%s&port=%d'
                % (OS_USER, DATABASE, self.socket_dir, self.port))

    def _as_postgres(self, cmd):
        # setpriv execs the command: the PID we hold is the server's own.
        return ['setpriv', '--reuid', OS_USER, '--regid', OS_USER,
                '--init-groups', '--'] + [str(c) for c in cmd]

    def _run(self, cmd, timeout=120):
        result = subprocess.run(self._as_postgres(cmd), capture_output=True,
                                text=True, timeout=timeout,
                                cwd=str(self.base_dir))
        if result.returncode:
            raise system.HarnessError('%s failed (%d): %s' % (
                ' '.join(str(c) for c in cmd), result.returncode,
                result.stderr.strip() or result.stdout.strip()))
        return result.stdout

    def start(self, timeout=60):
        """initdb, start the server, create the database; return self.

        :raises: HarnessError if a step fails or the server does not
            answer within ``timeout`` seconds.
        """
        bindir = binary_dir()
        user = pwd.getpwnam(OS_USER)
        try:
            for path in (self.base_dir, self.socket_dir):
                path.mkdir(parents=True, exist_ok=True)
                os.chown(path, user.pw_uid, user.pw_gid)
                os.chmod(path, 0o700)
            self._run([bindir / 'initdb', '-D', self.data_dir, '-U', OS_USER,
                       '--auth=trust', '--encoding=UTF8', '--locale=C'])
            self.port = system.free_port()
            cmd = [bindir / 'postgres', '-D', self.data_dir,
                   '-k', self.socket_dir, '-p', str(self.port)]
            for key, value in _SERVER_SETTINGS.items():
                cmd += ['-c', '%s=%s' % (key, value)]
            self._server = process.spawn(self._as_postgres(cmd),
                                         self.log_file)
            system.wait_for(self._ready, timeout,
                            'PostgreSQL on %s' % self.socket_dir,
                            interval=0.2)
            self._run([bindir / 'createdb', '-h', self.socket_dir,
                       '-p', self.port, '-U', OS_USER, DATABASE])
        except BaseException:
            self.stop()
            raise
        return self

    def _ready(self):
        process.check_alive(self._server, 'postgres', self.log_file)
        result = subprocess.run(
            [str(binary_dir() / 'pg_isready'), '-q', '-h',
             str(self.socket_dir), '-p', str(self.port)],
            capture_output=True)
        return result.returncode == 0

    def stop(self):
        """Stop the server by PID (a fast shutdown) and remove base_dir."""
        if self._server is not None:
            # SIGTERM is PostgreSQL's "smart" shutdown, which waits for
            # clients; SIGINT is the "fast" one.
            if self._server.poll() is None:
                self._server.send_signal(signal.SIGINT)
            try:
                self._server.wait(30)
            except subprocess.TimeoutExpired:
                process.terminate(self._server)
            self._server = None
        if self._own_base:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
