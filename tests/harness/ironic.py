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

"""A real standalone Ironic (API and conductor in one process) for tests.

Stdlib only. The service runs from a virtualenv holding ``ironic``,
``ironic-dbsync`` and ``baremetal`` (python-ironicclient) with noauth, no
RPC bus, sqlite and no DHCP, bound to 127.0.0.1 on a free port.
"""

import atexit
import configparser
import json as jsonlib
import os
import subprocess
import sys
import time
import urllib.request

from tests.harness import process
from tests.harness import system

# Log lines after which the conductor is dead but the process (and its
# silent API port) lives on: fail fast instead of waiting for a timeout.
# A failing child is re-forked forever by its parent, hence 'exited with'.
FATAL_LOG_MARKERS = (
    'NoValidDefaultForInterface',
    'Failed to register hardware types',
    'DriverLoadError',
    'DriverNotFoundInEntrypoint',
    'InterfaceNotFoundInEntrypoint',
    'Address already in use',
    'exited with status',
)

# Interfaces enabled besides power and management: enough for fake-hardware
# and for generic hardware types (PXE/iPXE boot, agent deploy) to load.
INTERFACES = {
    'bios': ['no-bios', 'fake'],
    'boot': ['fake', 'pxe', 'ipxe'],
    'console': ['no-console', 'fake'],
    'deploy': ['fake', 'direct'],
    'firmware': ['no-firmware', 'fake'],
    'inspect': ['no-inspect', 'fake'],
    'network': ['noop'],
    'raid': ['no-raid', 'fake'],
    'rescue': ['no-rescue', 'fake'],
    'storage': ['noop', 'fake'],
    'vendor': ['no-vendor', 'fake'],
}


class IronicError(system.HarnessError):
    """The Ironic service or a ``baremetal`` command failed."""


def _conf_value(value):
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ','.join(str(item) for item in value)
    return str(value)


class IronicService(object):
    """A standalone Ironic service in ``base_dir``; a context manager.

    :param base_dir: directory for ironic.conf, the sqlite database, the
        lock directory and ironic.log; created if missing.
    :param enabled_hardware_types: hardware type names to enable.
    :param enabled_power_interfaces: power interface names to enable.
    :param enabled_management_interfaces: management interface names.
    :param config: ``{section: {option: value}}`` merged over the generated
        configuration; lists are joined with commas, booleans lower-cased.
    :param sync_power_state_interval: seconds between power state syncs.
    :param bin_dir: the venv bin directory holding ``ironic``,
        ``ironic-dbsync`` and ``baremetal``; defaults to the one of
        ``sys.executable``.
    :param start_timeout: seconds to wait for the API and the conductor.
    :param stop_timeout: seconds between SIGTERM and SIGKILL.
    :param command_prefix: argv prepended to the ``ironic`` command, e.g.
        :meth:`tests.harness.netns.NetNamespace.command` to run it in a
        network namespace (whose port the caller forwards to 127.0.0.1).
    :param port: the API port; a free one on 127.0.0.1 when None.
    """

    def __init__(self, base_dir, enabled_hardware_types=('fake-hardware',),
                 enabled_power_interfaces=('fake',),
                 enabled_management_interfaces=('fake',), config=None,
                 sync_power_state_interval=5, bin_dir=None,
                 start_timeout=60, stop_timeout=15, command_prefix=(),
                 port=None):
        self.base_dir = os.path.abspath(base_dir)
        self.hardware_types = list(enabled_hardware_types)
        self.power_interfaces = list(enabled_power_interfaces)
        self.management_interfaces = list(enabled_management_interfaces)
        self.config = config or {}
        self.sync_power_state_interval = sync_power_state_interval
        self.bin_dir = bin_dir or os.path.dirname(sys.executable)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.command_prefix = list(command_prefix)
        self.config_path = self._path('ironic.conf')
        self.log_path = self._path('ironic.log')
        self.port = self._fixed_port = port
        self.process = None

    @property
    def endpoint(self):
        """The API root URL, e.g. ``http://127.0.0.1:PORT``."""
        return 'http://127.0.0.1:%d' % self.port

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def _bin(self, name):
        return os.path.join(self.bin_dir, name)

    def _path(self, name):
        return os.path.join(self.base_dir, name)

    def _sections(self):
        default = {
            'auth_strategy': 'noauth',
            'rpc_transport': 'none',
            'debug': True,
            'log_options': False,
            'minimum_memory_warning_only': True,
            'enabled_hardware_types': self.hardware_types,
            'enabled_power_interfaces': self.power_interfaces,
            'enabled_management_interfaces': self.management_interfaces,
            'default_network_interface': 'noop',
        }
        for kind, names in INTERFACES.items():
            default['enabled_%s_interfaces' % kind] = names
        return {
            'DEFAULT': default,
            'api': {'host_ip': '127.0.0.1', 'port': self.port},
            'conductor': {
                'automated_clean': False,
                'graceful_shutdown_timeout': 5,
                'sync_power_state_interval': self.sync_power_state_interval,
            },
            'database': {
                'connection': 'sqlite:///' + self._path('ironic.sqlite')},
            'deploy': {'http_root': self._path('httpboot')},
            'dhcp': {'dhcp_provider': 'none'},
            'oslo_concurrency': {'lock_path': self._path('locks')},
            'pxe': {'tftp_root': self._path('tftpboot')},
        }

    def write_config(self, path=None, overrides=None):
        """Write ironic.conf for the current port; return its path.

        :param path: where to write; ``config_path`` by default.
        :param overrides: ``{section: {option: value}}`` applied last, for
            the settings of one process among several.
        """
        parser = configparser.RawConfigParser()
        parser.optionxform = str
        sections = self._sections()
        for extra in (self.config, overrides or {}):
            for section, options in extra.items():
                sections.setdefault(section, {}).update(options)
        for section, options in sections.items():
            if section != 'DEFAULT':
                parser.add_section(section)
            for key, value in options.items():
                parser.set(section, key, _conf_value(value))
        path = path or self.config_path
        with open(path, 'w') as conf:
            parser.write(conf)
        return path

    def start(self):
        """Create the schema, launch Ironic and wait until it is usable."""
        self._prepare()
        # Fresh log: _wait_ready() looks for failures in all of it.
        open(self.log_path, 'wb').close()
        self.process = process.spawn(
            self.command_prefix + [self._bin('ironic'), '--config-file',
                                   self.config_path],
            self.log_path)
        atexit.register(self.stop)
        try:
            self._wait_ready()
        except BaseException:
            # A failed conductor ignores SIGTERM: no point in waiting.
            self._kill()
            raise

    def _prepare(self):
        """Directories, a free API port, ironic.conf and the schema."""
        # iPXE boot writes boot.ipxe into http_root when it loads.
        for name in ('httpboot', 'locks', 'tftpboot'):
            os.makedirs(self._path(name), exist_ok=True)
        self.port = self._fixed_port or system.free_port()
        self.write_config()
        dbsync = subprocess.run(
            [self._bin('ironic-dbsync'), '--config-file', self.config_path,
             'create_schema'],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            timeout=self.start_timeout)
        if dbsync.returncode:
            raise IronicError('ironic-dbsync create_schema failed (%d):\n%s'
                              % (dbsync.returncode, dbsync.stdout))

    def _wait_ready(self):
        deadline = time.monotonic() + self.start_timeout
        while True:
            fatal = [line for line in self.log_text().splitlines()
                     if any(mark in line for mark in FATAL_LOG_MARKERS)]
            if fatal:
                raise IronicError('Ironic failed to start (log: %s):\n%s'
                                  % (self.log_path, '\n'.join(fatal)))
            if self.process.poll() is not None:
                raise IronicError('Ironic exited with %d; log tail:\n%s'
                                  % (self.process.returncode,
                                     self.log_tail()))
            if self._drivers_registered():
                return
            if time.monotonic() > deadline:
                raise IronicError('Ironic not ready after %ss; log tail:\n%s'
                                  % (self.start_timeout, self.log_tail()))
            time.sleep(0.2)

    def _drivers_registered(self):
        try:
            drivers = self.request('GET', '/v1/drivers')['drivers']
        except (OSError, ValueError):
            return False
        return set(self.hardware_types) <= {d['name'] for d in drivers}

    def stop(self):
        """SIGTERM Ironic, SIGKILL its process group after stop_timeout."""
        self._end(process.stop_group, self.stop_timeout)

    def _kill(self):
        """SIGKILL the whole process group: forked workers included."""
        self._end(process.kill_group)

    def _end(self, how, *args):
        atexit.unregister(self.stop)
        if self.process is not None:
            how(self.process, *args)
            self.process = None

    def log_text(self):
        """The whole Ironic log (stdout and stderr included)."""
        return process.read_log(self.log_path)

    def log_tail(self, lines=40):
        """The last ``lines`` lines of the Ironic log."""
        return '\n'.join(self.log_text().splitlines()[-lines:])

    def env(self):
        """Environment for the ``baremetal`` CLI against this service.

        A copy of ``os.environ`` without other ``OS_*`` variables, with
        ``OS_AUTH_TYPE=none`` and ``OS_ENDPOINT``.
        """
        env = {key: value for key, value in os.environ.items()
               if not key.startswith('OS_')}
        env.update(OS_AUTH_TYPE='none', OS_ENDPOINT=self.endpoint)
        return env

    def baremetal(self, *args, json=True, timeout=60):
        """Run ``baremetal ARGS``; return its parsed JSON or its stdout.

        With ``json`` (for commands that print: list, show, create) adds
        ``-f json`` and returns the parsed output, ``None`` if empty.
        """
        cmd = [self._bin('baremetal')] + [str(arg) for arg in args]
        if json:
            cmd += ['-f', 'json']
        result = subprocess.run(cmd, env=self.env(), capture_output=True,
                                text=True, timeout=timeout)
        if result.returncode:
            raise IronicError('%s failed (%d):\n%s'
                              % (' '.join(cmd), result.returncode,
                                 result.stderr.strip()))
        if not json:
            return result.stdout
        return jsonlib.loads(result.stdout) if result.stdout.strip() else None

    def request(self, method, path, body=None, timeout=10):
        """Call the API directly (latest microversion); return parsed JSON.

        Much faster than :meth:`baremetal` for polling. HTTP errors raise
        ``urllib.error.HTTPError``.
        """
        data = None if body is None else jsonlib.dumps(body).encode()
        req = urllib.request.Request(
            self.endpoint + path, data=data, method=method,
            headers={'Content-Type': 'application/json',
                     'X-OpenStack-Ironic-API-Version': 'latest'})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            content = resp.read()
        return jsonlib.loads(content) if content else None


class NoVNCProxy(object):
    """``ironic-novncproxy`` beside an IronicService; a context manager.

    It reads the service's configuration and database, plus a file of its
    own that sets ``[vnc] enabled``: the service itself keeps it unset,
    because with it the single-process ``ironic`` would also start a
    proxy, and stops forking its workers. The service's ``[vnc]
    public_url`` must name this proxy's port.

    :param service: the running IronicService.
    :param port: the TCP port to serve noVNC and the websocket on.
    :param novnc_web: the noVNC files (Debian package ``novnc``).
    """

    def __init__(self, service, port, novnc_web='/usr/share/novnc',
                 start_timeout=60, stop_timeout=15):
        self.service = service
        self.port = port
        self.novnc_web = novnc_web
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.config_path = service._path('novncproxy.conf')
        self.log_path = service._path('novncproxy.log')
        self.process = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def start(self):
        """Start the proxy; return when it serves the noVNC page."""
        if not os.path.isdir(self.novnc_web):
            raise IronicError('no noVNC in %s: install the Debian package '
                              'novnc (bindep.txt)' % self.novnc_web)
        parser = configparser.RawConfigParser()
        # Ironic 39's ironic-novncproxy loads nodes through the conductor's
        # RPC when rpc_transport is 'none' or 'local', which it cannot
        # reach from a process of its own; with any other transport it
        # reads the database, which is all it needs.
        parser.set('DEFAULT', 'rpc_transport', 'json-rpc')
        parser.add_section('vnc')
        for key, value in (('enabled', 'true'), ('host_ip', '127.0.0.1'),
                           ('port', str(self.port)),
                           ('novnc_web', self.novnc_web)):
            parser.set('vnc', key, value)
        with open(self.config_path, 'w') as conf:
            parser.write(conf)
        open(self.log_path, 'wb').close()
        self.process = process.spawn(
            [self.service._bin('ironic-novncproxy'),
             '--config-file', self.service.config_path,
             '--config-file', self.config_path], self.log_path)
        atexit.register(self.stop)
        try:
            system.wait_for(self._serving, self.start_timeout,
                            'ironic-novncproxy on port %d' % self.port,
                            interval=0.2)
        except system.HarnessError:
            self.stop()
            raise IronicError('ironic-novncproxy did not start; log tail:\n'
                              + process.tail(self.log_path))

    def _serving(self):
        if self.process.poll() is not None:
            raise IronicError('ironic-novncproxy exited with %d; log tail:\n'
                              '%s' % (self.process.returncode,
                                      process.tail(self.log_path)))
        try:
            with urllib.request.urlopen(
                    'http://127.0.0.1:%d/vnc_lite.html' % self.port,
                    timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    def stop(self):
        """SIGTERM, then SIGKILL the process group after stop_timeout."""
        atexit.unregister(self.stop)
        if self.process is not None:
            process.stop_group(self.process, self.stop_timeout)
            self.process = None
