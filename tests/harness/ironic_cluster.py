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

"""Ironic as a deployment runs it: one API and several conductors.

``ironic-api`` and each ``ironic-conductor`` are separate processes on one
shared database (PostgreSQL, tests/harness/postgres.py), talking JSON-RPC
(``[DEFAULT] rpc_transport = json-rpc``). JSON-RPC clients reach a
conductor at the host name the hash ring gives them, so a conductor's
``[DEFAULT] host`` is an address: each conductor has a loopback address of
its own (127.0.0.11, .12, ...) and a ``[json_rpc] port`` of its own; with a
port other than 8089 Ironic registers the conductor as ``HOST:PORT``.
"""

import os
import time

from tests.harness import ironic
from tests.harness import process
from tests.harness import system


class Conductor:
    """One ``ironic-conductor`` process of a :class:`IronicCluster`.

    ``host`` (its name in the API's ``conductor`` fields), ``group`` (its
    ``[conductor] conductor_group``), ``config_path``, ``log_path``;
    :meth:`pids` lists its processes (a master and its worker).
    """

    def __init__(self, cluster, index, group):
        self.cluster = cluster
        self.name = 'conductor-%d' % index
        self.group = group
        self.address = '127.0.0.%d' % (11 + index)
        self.rpc_port = system.free_port()
        self.host = '%s:%d' % (self.address, self.rpc_port)
        self.config_path = cluster._path('%s.conf' % self.name)
        self.log_path = cluster._path('%s.log' % self.name)
        self.process = None

    def overrides(self):
        """The settings that differ from the cluster's common ones."""
        return {
            'DEFAULT': {'host': self.address},
            'json_rpc': {'host_ip': self.address, 'port': self.rpc_port},
            'conductor': {'conductor_group': self.group},
        }

    def start(self, overrides=None):
        """Launch the process; :meth:`IronicCluster.wait_alive` waits.

        :param overrides: ``{section: {option: value}}`` for this start
            only, over the conductor's own settings.
        """
        settings = self.overrides()
        for section, options in (overrides or {}).items():
            settings.setdefault(section, {}).update(options)
        self.cluster.write_config(self.config_path, settings)
        with open(self.log_path, 'ab') as log:
            log.write(b'--- harness: starting %s\n' % self.name.encode())
        self.process = process.spawn(
            [self.cluster._bin('ironic-conductor'),
             '--config-file', self.config_path], self.log_path)

    def kill(self):
        """SIGKILL the conductor and anything it forked: a crash."""
        if self.process is not None:
            process.kill_group(self.process)
            self.process = None

    def terminate(self):
        """Ask for a graceful stop (SIGTERM); :meth:`stop` waits."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()

    def stop(self, timeout=30):
        """SIGTERM (a graceful stop), SIGKILL after ``timeout`` seconds."""
        if self.process is not None:
            process.stop_group(self.process, timeout)
            self.process = None

    def pids(self):
        """PIDs of the conductor's processes (its process group)."""
        if self.process is None:
            return set()
        found = set()
        for entry in os.listdir('/proc'):
            if entry.isdigit():
                try:
                    if os.getpgid(int(entry)) == self.process.pid:
                        found.add(int(entry))
                except ProcessLookupError:
                    pass
        return found

    def log_text(self):
        return process.read_log(self.log_path)


class IronicCluster(ironic.IronicService):
    """``ironic-api`` plus one ``ironic-conductor`` per group entry.

    :param base_dir: as for IronicService.
    :param database_url: SQLAlchemy URL of an empty database.
    :param conductor_groups: one conductor group name per conductor, e.g.
        ``('hv1', 'hv1', 'hv2')``.
    :param kwargs: as for IronicService (hardware types, interfaces,
        ``config``, ``sync_power_state_interval``, timeouts).

    ``conductors`` lists the :class:`Conductor` objects; the ``baremetal``
    and ``request`` helpers go to the API.
    """

    def __init__(self, base_dir, database_url, conductor_groups, **kwargs):
        super().__init__(base_dir, **kwargs)
        self.database_url = database_url
        self.conductors = [Conductor(self, index, group)
                           for index, group in enumerate(conductor_groups)]

    def _sections(self):
        sections = super()._sections()
        sections['DEFAULT']['rpc_transport'] = 'json-rpc'
        sections['database']['connection'] = self.database_url
        sections['json_rpc'] = {'auth_strategy': 'noauth'}
        return sections

    def start(self):
        """Create the schema, launch every process, wait until all serve."""
        self._prepare()
        open(self.log_path, 'wb').close()
        self.process = process.spawn(
            [self._bin('ironic-api'), '--config-file', self.config_path],
            self.log_path)
        try:
            for conductor in self.conductors:
                conductor.start()
            self._wait_ready()
            for conductor in self.conductors:
                self.wait_alive(conductor)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self):
        """Wait until the API lists the enabled hardware types."""
        deadline = time.monotonic() + self.start_timeout
        while not self._drivers_registered():
            process.check_alive(self.process, 'ironic-api', self.log_path)
            for conductor in self.conductors:
                self._check_conductor(conductor)
            if time.monotonic() > deadline:
                raise ironic.IronicError(
                    'Ironic not ready after %ss; API log tail:\n%s'
                    % (self.start_timeout, self.log_tail()))
            time.sleep(0.2)

    def _check_conductor(self, conductor):
        fatal = [line for line in conductor.log_text().splitlines()
                 if any(mark in line for mark in ironic.FATAL_LOG_MARKERS)]
        if fatal:
            raise ironic.IronicError('%s failed to start (log: %s):\n%s'
                                     % (conductor.name, conductor.log_path,
                                        '\n'.join(fatal)))
        process.check_alive(conductor.process, conductor.name,
                            conductor.log_path)

    def wait_alive(self, conductor, timeout=None):
        """Wait until the conductor process has started and registered.

        Ironic logs "Successfully started conductor" once the conductor's
        row, hardware types and periodic tasks are in place; a restarted
        conductor takes over its old row.
        """
        marker = 'harness: starting %s' % conductor.name

        def ready():
            self._check_conductor(conductor)
            log = conductor.log_text()
            return 'Successfully started conductor' in log[log.rfind(marker):]
        system.wait_for(ready, timeout or self.start_timeout,
                        '%s to start' % conductor.name, interval=0.2)

    def stop(self):
        """Stop the conductors (all at once), then the API, by PID."""
        for conductor in self.conductors:
            conductor.terminate()
        for conductor in self.conductors:
            conductor.stop()
        super().stop()
