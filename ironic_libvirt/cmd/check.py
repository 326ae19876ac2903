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

"""``ironic-libvirt check``: a node's driver_info, one step at a time.

It runs what the driver runs, with the driver's own functions: parsing
driver_info (with the URI policy of ``[libvirt]`` in ironic.conf), opening
and authenticating the connection, and finding the domain by name, UUID or
MAC address. Each step is a row; the first failure says what to fix and
ends the check with exit code 1. A --driver-info that is not a JSON
object, or a --config-file that cannot be read, is a usage error (exit
code 2).
"""

import argparse
import json
import types

from cliff import lister
from ironic.common import exception
from oslo_config import cfg

from ironic_libvirt.cmd import hypervisor
from ironic_libvirt.drivers import driver_info
from ironic_libvirt.drivers import exception as driver_exception
from ironic_libvirt.virt import domain as virt_domain
from ironic_libvirt.virt import errors
from ironic_libvirt.virt import locator

CONF = cfg.CONF
OK = 'ok'
FAILED = 'FAILED'
SKIPPED = 'skipped'


def _driver_info_argument(value):
    """An argparse type: a JSON object, or @ and a file holding one."""
    try:
        if value.startswith('@'):
            with open(value[1:]) as source:
                value = source.read()
        info = json.loads(value)
    except OSError as exc:
        raise argparse.ArgumentTypeError('cannot read %s: %s'
                                         % (value[1:], exc.strerror))
    except ValueError as exc:
        raise argparse.ArgumentTypeError('not JSON (%s); pass a JSON object '
                                         'or @FILE' % exc)
    if not isinstance(info, dict):
        raise argparse.ArgumentTypeError('driver_info must be a JSON object')
    return info


class Check(lister.Lister):
    """Check a node's driver_info against its hypervisor, step by step."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--driver-info', required=True,
                            type=_driver_info_argument,
                            metavar='JSON|@FILE',
                            help="the node's driver_info as JSON, or @ and "
                                 "a file holding it")
        parser.add_argument('--mac', action='append', default=[],
                            help="a MAC address of the node's ports, to "
                                 "find the domain without libvirt_domain "
                                 "(repeatable)")
        parser.add_argument('--config-file', action='append', default=[],
                            help='ironic.conf whose [libvirt] options '
                                 '(default_uri, allowed_path_dirs, ...) '
                                 'apply (repeatable)')
        self.parser = parser
        return parser

    def take_action(self, parsed_args):
        if parsed_args.config_file:
            try:
                CONF([], project='ironic',
                     default_config_files=parsed_args.config_file)
            except cfg.Error as exc:
                self.parser.error('--config-file: %s' % exc)
        self._steps = []
        self._check(parsed_args)
        return ('Step', 'Result', 'Detail'), self._steps

    def run(self, parsed_args):
        """Run the check; exit code 1 when a step failed."""
        result = super().run(parsed_args)
        failed = any(step[1] == FAILED for step in self._steps)
        return result or int(failed)

    def _step(self, name, result, detail=''):
        self._steps.append((name, result, detail))
        return result == OK

    def _check(self, parsed_args):
        node = types.SimpleNamespace(uuid='(checked)',
                                     driver_info=parsed_args.driver_info)
        self._step('read driver_info', OK, ', '.join(sorted(
            k for k in node.driver_info if k != 'sasl_password')))
        try:
            info = driver_info.parse_driver_info(node)
        except exception.IronicException as exc:
            policy = isinstance(exc.__context__, errors.UnsafeURI)
            self._step('URI policy' if policy else 'parse driver_info',
                       FAILED, str(exc))
            return
        self._step('parse driver_info', OK)
        self._step('URI policy', OK, info.params.uri)
        with hypervisor.connected(info.params) as connection:
            if self._connect(connection):
                self._find(connection, info, parsed_args.mac)

    def _connect(self, connection):
        try:
            connection.call(lambda conn: None, 'connecting')
        except errors.AuthFailed as exc:
            self._step('connect', OK, connection.params.uri)
            return self._step('authenticate', FAILED,
                              '%s. Fix: %s' % (exc, driver_exception.AUTH_FIX))
        except errors.ConnectionFailed as exc:
            return self._step('connect', FAILED,
                              '%s. Fix: %s'
                              % (exc, driver_exception.CONNECTION_FIX))
        self._step('connect', OK, connection.params.uri)
        username = connection.params.sasl_username
        return self._step('authenticate', OK,
                          'SASL user %s' % username if username
                          else 'no SASL')

    def _find(self, connection, info, macs):
        find = locator.DomainLocator()
        try:
            if info.domain is not None:
                how = 'by name or UUID %s' % info.domain
                domain = find.by_ident(connection, info.domain)
            elif macs:
                how = 'by MAC address %s' % ', '.join(macs)
                domain = find.by_macs(connection, macs)
            else:
                return self._step(
                    'find domain', FAILED,
                    'driver_info has no libvirt_domain. Fix: set it, or '
                    "pass the node's port MAC addresses with --mac.")
            state = domain.power_state()
        except errors.AmbiguousDomain as exc:
            return self._step('find domain', FAILED,
                              '%s. Fix: set libvirt_domain.' % exc)
        except errors.DomainNotFound as exc:
            return self._step('find domain', FAILED,
                              '%s. Fix: check libvirt_domain or the MAC '
                              'addresses.' % exc)
        except errors.LibvirtCoreError as exc:
            return self._step('find domain', FAILED, str(exc))
        self._step('find domain', OK, '%s (%s), %s' % (domain.name,
                                                       domain.uuid, how))
        return self._step('power state', OK,
                          {virt_domain.POWER_ON: 'power on',
                           virt_domain.POWER_OFF: 'power off'}.get(
                               state, 'error'))
