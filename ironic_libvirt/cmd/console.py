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

"""A domain's consoles on stdin/stdout.

``ironic-libvirt console`` is the serial console; the ``libvirt-socat``
console interface runs it under socat. ``ironic-libvirt vnc-relay`` is the
screen as a VNC server without password, for ``ironic-novncproxy``; the
``libvirt-graphical`` console interface runs it under socat. Both can also
be run by hand. The terminal (or socat's pty) is put in raw mode so that
every byte passes unchanged.
"""

import contextlib
import sys
import termios
import tty
import warnings

from ironic_libvirt.cmd import hypervisor
from ironic_libvirt.virt import console
from ironic_libvirt.virt import graphics
from ironic_libvirt.virt import locator


@contextlib.contextmanager
def _raw(fd):
    try:
        saved = termios.tcgetattr(fd)
    except termios.error:  # not a terminal
        yield
        return
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


class _DomainStream(hypervisor.HypervisorCommand):
    """A stream of a domain on stdin/stdout, the terminal in raw mode."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--domain', required=True,
                            help='name or UUID of the domain')
        return parser

    def take_action(self, parsed_args):
        with hypervisor.connected(
                self.connection_params(parsed_args)) as connection:
            domain = locator.DomainLocator().by_ident(connection,
                                                      parsed_args.domain)
            in_fd, out_fd = sys.stdin.fileno(), sys.stdout.fileno()
            with _raw(in_fd):
                self.serve(connection, domain, in_fd, out_fd)

    def serve(self, connection, domain, in_fd, out_fd):
        """Pass the stream until either side ends."""
        raise NotImplementedError


class Console(_DomainStream):
    """Attach stdin/stdout to a domain's serial console."""

    def serve(self, connection, domain, in_fd, out_fd):
        console.attach(connection, domain.uuid, in_fd, out_fd)


class VncRelay(_DomainStream):
    """Serve a domain's screen on stdin/stdout as VNC without password."""

    def take_action(self, parsed_args):
        # Under socat, stderr is the client's stream too: a warning printed
        # there would break the VNC protocol.
        warnings.simplefilter('ignore')
        return super().take_action(parsed_args)

    def serve(self, connection, domain, in_fd, out_fd):
        graphics.relay(domain, in_fd, out_fd)
