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

"""A domain's serial console on a pair of file descriptors.

libvirt opens the console through the connection (``virDomainOpenConsole``
and a stream), so this works over every transport, unlike a pty path that
exists only on the hypervisor. What is read from one descriptor is sent to
the guest's serial port; what the guest writes comes out of the other.
"""

import logging
import os
import threading

import libvirt

LOG = logging.getLogger(__name__)

_CHUNK = 4096
# Environment variable of the SASL password for the console command.
PASSWORD_ENV = 'IRONIC_LIBVIRT_SASL_PASSWORD'


def _pump_out(stream, out_fd, done):
    try:
        while True:
            data = stream.recv(_CHUNK)
            if not data or data == -2:
                break
            os.write(out_fd, data)
    except (libvirt.libvirtError, OSError) as exc:
        # The console went away or the reader closed: the session ends.
        LOG.debug('Console output ended: %s', exc)
    finally:
        done.set()


def attach(connection, uuid, in_fd, out_fd):
    """Connect ``in_fd``/``out_fd`` to a domain's serial console until EOF.

    Returns when either side closes: ``in_fd`` reaches end of file, or the
    console goes away (the domain stops, another session takes it over).

    :param connection: a :class:`~ironic_libvirt.virt.connection.Connection`.
    :param uuid: the domain's UUID.
    :raises: DomainNotFound, OperationFailed, ConnectionFailed
    """
    def open_console(conn):
        stream = conn.newStream(0)
        conn.lookupByUUIDString(uuid).openConsole(
            None, stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
        return stream

    stream = connection.call(open_console, 'opening the serial console')
    done = threading.Event()
    threading.Thread(target=_pump_out, args=(stream, out_fd, done),
                     daemon=True).start()
    try:
        while not done.is_set():
            data = os.read(in_fd, _CHUNK)
            if not data:
                break
            stream.send(data)
    except (libvirt.libvirtError, OSError) as exc:
        # The console went away or the writer closed: the session ends.
        LOG.debug('Console input ended: %s', exc)
    finally:
        try:
            stream.finish()
        except libvirt.libvirtError as exc:
            # Already closed by the other side.
            LOG.debug('Closing the console stream: %s', exc)
