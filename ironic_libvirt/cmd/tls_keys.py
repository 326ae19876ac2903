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

"""``ironic-libvirt tls-keys``: keys and certificates for ``qemu+tls``."""

import argparse
import ipaddress
import pathlib

from cliff import command

from ironic_libvirt.lab import tls_keys


def _ip(value):
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise argparse.ArgumentTypeError('%r is not an IP address' % value)


def _checked(check, what):
    def parse(value):
        try:
            return check(value, what)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc))
    return parse


def _absolute(value):
    if not value.startswith('/'):
        raise argparse.ArgumentTypeError('%r is not an absolute path'
                                         % value)
    return value


def _days(value):
    try:
        days = int(value)
    except ValueError:
        days = 0
    if days < 1:
        raise argparse.ArgumentTypeError('%r is not a number of days' % value)
    return days


class TLSKeys(command.Command):
    """Make a CA, a hypervisor's and a conductor's TLS certificates."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--host', action='append', default=[],
                            type=_checked(tls_keys.check_host, '--host'),
                            metavar='NAME',
                            help='host name of the hypervisor, as in '
                                 'libvirt_uri (repeatable; the first is '
                                 'the common name)')
        parser.add_argument('--ip', action='append', default=[], type=_ip,
                            metavar='ADDRESS',
                            help='IP address of the hypervisor (repeatable)')
        parser.add_argument('--output', default='/', metavar='ROOT',
                            help='directory below which etc/pki/... and '
                                 'the client directory are written '
                                 '(default: %(default)s, this machine)')
        parser.add_argument('--client-dir', type=_absolute,
                            default='/' + tls_keys.CLIENT_DIR, metavar='DIR',
                            help="the conductor's tls_pki_path, as "
                                 'installed (default: %(default)s)')
        parser.add_argument('--client-cn',
                            type=_checked(tls_keys.check_name, '--client-cn'),
                            default=tls_keys.DEFAULT_CLIENT_CN,
                            help="common name of the conductor's "
                                 'certificate (default: %(default)s)')
        parser.add_argument('--organization',
                            type=_checked(tls_keys.check_name,
                                          '--organization'),
                            default=tls_keys.DEFAULT_ORGANIZATION,
                            help='organization in every subject '
                                 '(default: %(default)s)')
        parser.add_argument('--days', type=_days,
                            default=tls_keys.DEFAULT_DAYS,
                            help='validity of the certificates '
                                 '(default: %(default)s)')
        ca = parser.add_mutually_exclusive_group()
        ca.add_argument('--reuse-ca', dest='ca', action='store_const',
                        const='reuse', default='new',
                        help='sign with the CA already below ROOT (for '
                             'another hypervisor)')
        ca.add_argument('--replace-ca', dest='ca', action='store_const',
                        const='replace',
                        help='make a new CA over an existing one (every '
                             'certificate it signed must be reissued)')
        self._parser = parser
        return parser

    def take_action(self, parsed_args):
        if not parsed_args.host and not parsed_args.ip:
            self._parser.error('give the hypervisor a --host or an --ip')
        result = tls_keys.make(tls_keys.Request(
            hosts=tuple(parsed_args.host), ips=tuple(parsed_args.ip),
            root=pathlib.Path(parsed_args.output),
            client_dir=parsed_args.client_dir,
            client_cn=parsed_args.client_cn,
            organization=parsed_args.organization, days=parsed_args.days,
            ca=parsed_args.ca))
        out = self.app.stdout
        root = pathlib.Path(parsed_args.output)
        out.write('Wrote below %s:\n' % root)
        for installed, path in result.files.items():
            out.write('  %-40s %04o\n' % (installed,
                                          path.stat().st_mode & 0o777))
        out.write('\nOn the hypervisor (%s), install the CA certificate and '
                  'the server files\nand add to /etc/libvirt/libvirtd.conf '
                  '(then run libvirtd --listen,\nor enable '
                  'libvirtd-tls.socket):\n\n' % result.server_host)
        out.writelines('    %s\n' % line for line in result.libvirtd_conf())
        out.write('\nOn the conductor, install %s (readable only by Ironic) '
                  'and set:\n\n' % parsed_args.client_dir)
        out.write('    baremetal node set NODE'
                  + ''.join(' \\\n        --driver-info %s=%s' % item
                            for item in result.driver_info().items())
                  + '\n')
        out.write('\nKeep /%s (written to %s) off the hypervisors and '
                  'conductors:\nit signs for every hypervisor '
                  '(--reuse-ca).\n'
                  % (tls_keys.CA_KEY, root / tls_keys.CA_KEY))
