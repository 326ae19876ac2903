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

"""Commands about one hypervisor: domains, create-fleet, enroll-file.

The URI is the operator's own: unlike a node's driver_info it is not held
to the driver's URI policy (``check`` applies that policy).

Input errors are usage errors (exit code 2, through argparse); a failed
operation exits 1 with a one-line message that names the fix.
"""

import argparse
import contextlib
import json
import os

from cliff import command
from cliff import lister
import libvirt
import yaml

from ironic_libvirt.virt import connection as virt_connection
from ironic_libvirt.virt import console
from ironic_libvirt.virt import errors
from ironic_libvirt.virt import fleet


def positive_int(value):
    """An argparse type: an integer of at least 1."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError('%r is not an integer of at least 1'
                                         % value)
    return number


def add_connection_arguments(parser, uri_required=True):
    """Add --uri and the credential options to an argument parser."""
    parser.add_argument('--uri', required=uri_required,
                        help='libvirt URI of the hypervisor')
    parser.add_argument('--ssh-key-filename', metavar='PATH',
                        help='private key for qemu+ssh URIs')
    parser.add_argument('--tls-pki-path', metavar='DIR',
                        help='directory with cacert.pem, clientcert.pem and '
                             'clientkey.pem for qemu+tls URIs')
    parser.add_argument('--sasl-username', metavar='USER',
                        help='SASL user name (qemu+tcp, qemu+tls)')
    parser.add_argument('--sasl-password-env', metavar='VARIABLE',
                        default=console.PASSWORD_ENV,
                        help='environment variable holding the SASL '
                             'password (default: %(default)s); passwords '
                             'are never taken on the command line')
    return parser


def connection_params(parsed_args, parser):
    """The ConnectionParams of the connection options.

    :param parser: the command's parser, which reports input errors.
    :raises: SystemExit with exit code 2 (a usage error, through
        ``parser.error``) if the SASL password is missing.
    """
    password = None
    if parsed_args.sasl_username is not None:
        password = os.environ.get(parsed_args.sasl_password_env)
        if password is None:
            parser.error('--sasl-username needs the password in the '
                         'environment variable %s; set it, or name another '
                         'variable with --sasl-password-env'
                         % parsed_args.sasl_password_env)
    return virt_connection.ConnectionParams(
        uri=parsed_args.uri, ssh_key_filename=parsed_args.ssh_key_filename,
        tls_pki_path=parsed_args.tls_pki_path,
        sasl_username=parsed_args.sasl_username, sasl_password=password)


class CommandFailed(Exception):
    """An operation failed; cliff prints the message and exits 1."""


def _fix(exc, parsed_args):
    """What the operator can do about a failure of the core or libvirt."""
    if isinstance(exc, errors.AuthFailed):
        return ('check --sasl-username and the password in the environment '
                'variable %s' % parsed_args.sasl_password_env)
    if isinstance(exc, errors.ConnectionFailed):
        return ('check --uri, that libvirtd listens there, and the '
                'credential options (--ssh-key-filename, --tls-pki-path, '
                '--sasl-username)')
    if isinstance(exc, errors.DomainNotFound):
        return ('list the domains with: ironic-libvirt domains --uri %s'
                % parsed_args.uri)
    if isinstance(exc, libvirt.libvirtError):
        return 'see the libvirtd log on the hypervisor'
    return None


class HypervisorCommand(command.Command):
    """A command with the connection options.

    A failure of libvirt or of the core becomes :class:`CommandFailed`,
    whose one-line message names the fix, instead of a traceback.
    """

    def get_parser(self, prog_name):
        self.parser = add_connection_arguments(super().get_parser(prog_name))
        return self.parser

    def connection_params(self, parsed_args):
        """The ConnectionParams of the options; usage error without them."""
        return connection_params(parsed_args, self.parser)

    def run(self, parsed_args):
        try:
            return super().run(parsed_args)
        except (errors.LibvirtCoreError, libvirt.libvirtError) as exc:
            text = (exc.get_error_message()
                    if isinstance(exc, libvirt.libvirtError) else str(exc))
            fix = _fix(exc, parsed_args)
            raise CommandFailed(' '.join(
                text.split()) + ('. Fix: %s.' % fix if fix else '')) from None


@contextlib.contextmanager
def connected(params):
    """A :class:`~ironic_libvirt.virt.connection.Connection` for ``params``.

    It is closed when the block ends.
    """
    connection = virt_connection.ConnectionCache(size=1).get(params)
    try:
        yield connection
    finally:
        connection.close()


class Domains(HypervisorCommand, lister.Lister):
    """List a hypervisor's domains: state, MACs, boot device, firmware."""

    def take_action(self, parsed_args):
        columns = ('Name', 'UUID', 'State', 'MAC addresses', 'Boot device',
                   'Firmware')
        rows = []
        with connected(self.connection_params(parsed_args)) as connection:
            for domain in fleet.domains(connection):
                info = fleet.describe(domain)
                rows.append((info['name'], info['uuid'], info['state'],
                             ', '.join(info['macs']), info['boot_device'],
                             info['firmware']))
        return columns, rows


class _Progress:
    """A progress line on stderr: ``created 3/10 (node-2)``."""

    def __init__(self, stream):
        self._stream = stream
        self._tty = stream.isatty()

    def __call__(self, done, total, name):
        end = '\r' if self._tty and done < total else '\n'
        self._stream.write('created %d/%d (%s)%s' % (done, total, name, end))
        self._stream.flush()


class CreateFleet(HypervisorCommand, lister.Lister):
    """Create N domains, from scratch or cloned from a base domain."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--count', type=positive_int, required=True,
                            help='how many domains')
        parser.add_argument('--prefix', required=True,
                            help='domain names are PREFIX-0, PREFIX-1, ...')
        parser.add_argument('--base', metavar='DOMAIN',
                            help='clone this shut-off domain instead of '
                                 'creating empty machines')
        parser.add_argument('--clone-strategy',
                            choices=fleet.CLONE_STRATEGIES,
                            default=fleet.FULL,
                            help='full: copy the base disk; quick: a qcow2 '
                                 'overlay of it (default: %(default)s)')
        parser.add_argument('--memory-mib', type=positive_int, default=1024,
                            help='memory of new domains (default: '
                                 '%(default)s)')
        parser.add_argument('--vcpus', type=positive_int, default=1,
                            help='vCPUs of new domains (default: '
                                 '%(default)s)')
        parser.add_argument('--disk-gib', type=positive_int, default=10,
                            help='disk size of new domains (default: '
                                 '%(default)s)')
        parser.add_argument('--network', metavar='NAME',
                            help='libvirt network of the NIC of new domains '
                                 '(default: a user-mode NIC)')
        parser.add_argument('--pool', default='default',
                            help='storage pool of the disks (default: '
                                 '%(default)s)')
        parser.add_argument('--pool-path', default='/var/lib/libvirt/images',
                            help='directory of the pool if it must be '
                                 'created (default: %(default)s)')
        return parser

    def take_action(self, parsed_args):
        names = ['%s-%d' % (parsed_args.prefix, index)
                 for index in range(parsed_args.count)]
        with connected(self.connection_params(parsed_args)) as connection:
            created = fleet.create(
                connection, names, parsed_args.pool, parsed_args.pool_path,
                memory_mib=parsed_args.memory_mib, vcpus=parsed_args.vcpus,
                disk_gib=parsed_args.disk_gib, network=parsed_args.network,
                base=parsed_args.base, strategy=parsed_args.clone_strategy,
                progress=_Progress(self.app.stderr))
            return (('Name', 'UUID', 'MAC addresses'),
                    [(d.name, d.uuid, ', '.join(d.mac_addresses()))
                     for d in created])


def _driver_info(params, domain):
    info = {'libvirt_uri': params.uri, 'libvirt_domain': domain.name}
    for key in ('ssh_key_filename', 'tls_pki_path', 'sasl_username',
                'sasl_password'):
        if getattr(params, key):
            info[key] = getattr(params, key)
    return info


class EnrollFile(HypervisorCommand, lister.Lister):
    """Write a file of nodes and ports that `baremetal create` enrolls."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--domains', nargs='+', metavar='DOMAIN',
                            help='only these domains (default: all)')
        parser.add_argument('--driver', default='libvirt',
                            help='hardware type of the nodes (default: '
                                 '%(default)s)')
        parser.add_argument('-o', '--output', required=True, metavar='FILE',
                            help='file to write: YAML if it ends in .yaml '
                                 'or .yml, else JSON. It holds the SASL '
                                 'password if one is given, so it is made '
                                 'readable by its owner only')
        return parser

    def take_action(self, parsed_args):
        params = self.connection_params(parsed_args)
        with connected(params) as connection:
            nodes = [self._node(parsed_args, params, domain)
                     for domain in self._domains(parsed_args, connection)]
        document = {'nodes': nodes}
        try:
            fd = os.open(parsed_args.output,
                         os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                # The mode of os.open applies only to a new file: an
                # existing one keeps its own, so narrow it before the
                # password is written.
                os.fchmod(fd, 0o600)
            except OSError:
                os.close(fd)
                raise
        except OSError as exc:
            raise CommandFailed('cannot write %s: %s. Fix: pass -o a file in '
                                'a directory you can write to.'
                                % (parsed_args.output, exc.strerror))
        with os.fdopen(fd, 'w') as output:
            if parsed_args.output.endswith(('.yaml', '.yml')):
                yaml.safe_dump(document, output, default_flow_style=False)
            else:
                json.dump(document, output, indent=2)
                output.write('\n')
        return (('Name', 'MAC addresses'),
                [(n['name'], ', '.join(p['address'] for p in n['ports']))
                 for n in nodes])

    @staticmethod
    def _domains(parsed_args, connection):
        found = fleet.domains(connection)
        if not parsed_args.domains:
            return found
        by_name = {d.name: d for d in found}
        missing = sorted(set(parsed_args.domains) - set(by_name))
        if missing:
            raise errors.DomainNotFound('no such domains on %s: %s'
                                        % (parsed_args.uri,
                                           ', '.join(missing)))
        return [by_name[n] for n in parsed_args.domains]

    @staticmethod
    def _node(parsed_args, params, domain):
        hardware = domain.hardware()
        return {
            'name': domain.name,
            'driver': parsed_args.driver,
            'driver_info': _driver_info(params, domain),
            'properties': {'cpus': hardware['vcpus'],
                           'memory_mb': hardware['memory_kib'] // 1024,
                           'local_gb': hardware['disk_bytes'] // fleet.GIB,
                           'cpu_arch': hardware['arch']},
            'ports': [{'address': mac} for mac in hardware['macs']],
        }
