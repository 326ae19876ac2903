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

"""A private network namespace for deploy tests, and ports into it.

The namespace lives as long as a ``sleep`` of the harness's own that
``unshare --net`` started (no name under /run/netns to leak). Daemons join
it with :meth:`NetNamespace.command`. Bridges, guests and DHCP inside it
never touch the host's network; the test process, which stays outside,
reaches a TCP port inside through :meth:`NetNamespace.forward`: a socat on
the host's 127.0.0.1 and one in the namespace, joined by a unix socket
(a file, hence visible from both).
"""

import os
import pathlib
import signal
import subprocess
import tempfile

from tests.harness import process
from tests.harness import system


class NetNamespace(object):
    """A network namespace with only ``lo`` (up); a context manager.

    :param base_dir: for logs and sockets; a temporary directory when None.
    """

    def __init__(self, base_dir=None):
        self.base_dir = pathlib.Path(
            base_dir or tempfile.mkdtemp(prefix='ilv-netns-'))
        self._holder = None
        self._net_ns = None
        self._forwarders = []

    @property
    def path(self):
        """The namespace's /proc path, for ``nsenter --net=``."""
        return '/proc/%d/ns/net' % self._holder.pid

    def command(self, argv=()):
        """``argv`` prefixed so that it runs inside the namespace."""
        return ['nsenter', '--net=%s' % self.path, '--'] + [
            str(arg) for arg in argv]

    def start(self, timeout=10):
        """Create the namespace and bring its loopback up."""
        self.base_dir.mkdir(parents=True, exist_ok=True)
        log = self.base_dir / 'netns.log'
        self._holder = process.spawn(
            ['unshare', '--net', '--', 'sh', '-c',
             'ip link set lo up && exec sleep infinity'], log)
        own = os.readlink('/proc/self/ns/net')

        def ready():
            process.check_alive(self._holder, 'netns holder', log)
            try:
                ns = os.readlink(self.path)
            except OSError:
                return False
            return ns != own and self._lo_up()

        try:
            system.wait_for(ready, timeout, 'a private network namespace')
        except BaseException:
            self.stop()
            raise
        self._net_ns = os.readlink(self.path)
        return self

    def _lo_up(self):
        # sleep is exec'd only after `ip link set lo up` succeeded.
        try:
            with open('/proc/%d/comm' % self._holder.pid) as comm:
                return comm.read().strip() == 'sleep'
        except OSError:
            return False

    def forward(self, port, timeout=10):
        """Make 127.0.0.1:``port`` on the host reach it in the namespace.

        :returns: ``port``.
        """
        sock = self.base_dir / ('forward-%d.sock' % port)
        log = self.base_dir / ('forward-%d.log' % port)
        inside = process.spawn(self.command([
            'socat', 'UNIX-LISTEN:%s,fork,unlink-early' % sock,
            'TCP:127.0.0.1:%d' % port]), log)
        self._forwarders.append(inside)
        system.wait_for(lambda: process.check_alive(inside, 'socat', log)
                        and sock.exists(), timeout, 'socket %s' % sock)
        outside = process.spawn([
            'socat', 'TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork' % port,
            'UNIX-CONNECT:%s' % sock], log)
        self._forwarders.append(outside)
        system.wait_for(lambda: process.check_alive(outside, 'socat', log)
                        and system.port_open(port), timeout,
                        'port %d forwarded into the namespace' % port)
        return port

    def port_open(self, port):
        """Whether 127.0.0.1:``port`` in the namespace accepts TCP."""
        probe = subprocess.run(
            self.command(['bash', '-c', 'exec 3<>/dev/tcp/127.0.0.1/%d'
                          % port]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return probe.returncode == 0

    def pids(self):
        """PIDs of the processes in the namespace, the holder included."""
        found = []
        for entry in pathlib.Path('/proc').iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                if os.readlink(entry / 'ns' / 'net') == self._net_ns:
                    found.append(int(entry.name))
            except OSError:
                pass
        return found

    def stop(self):
        """Stop the forwarders, then kill what is left in the namespace.

        Everything in it was started by the harness (daemons stop
        themselves first; this catches what they left behind).
        """
        for proc in self._forwarders:
            process.terminate(proc, timeout=5)
        self._forwarders = []
        if self._net_ns is not None:
            for pid in self.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self._holder is not None:
            self._holder.kill()
            self._holder.wait()
        self._holder = self._net_ns = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
