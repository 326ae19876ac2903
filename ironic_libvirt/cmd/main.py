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

"""The ``ironic-libvirt`` command line (cliff).

Subcommands:

* ``domains``: a hypervisor's domains with state, MACs, boot device and
  firmware;
* ``create-fleet``: many domains at once, from scratch or cloned;
* ``enroll-file``: a file that ``baremetal create`` enrolls;
* ``check``: a node's driver_info, step by step, with the fix of a failure;
* ``console``: the serial console of a domain on stdin/stdout (what the
  ``libvirt-socat`` console interface runs under socat);
* ``vnc-relay``: a domain's screen as a VNC server without password (what
  the ``libvirt-graphical`` console interface runs under socat);
* ``tls-keys``: a CA and the certificates of a hypervisor and a conductor
  for ``qemu+tls``;
* ``build-ramdisk``: an ironic-python-agent deploy kernel and ramdisk
  built from Debian packages and PyPI.

The subcommands are entry points of the group ``ironic_libvirt.cli``,
loaded only when run (``console`` never imports Ironic).
"""

import logging
import sys

from cliff import app
from cliff import commandmanager
from pbr import version


class IronicLibvirtApp(app.App):
    """libvirt hypervisors as seen by Ironic's libvirt driver."""

    NAME = 'ironic-libvirt'
    LOG = logging.getLogger(NAME)

    def __init__(self, stdout=None, stderr=None):
        super().__init__(
            description=__doc__.splitlines()[0],
            version=version.VersionInfo('ironic-libvirt').version_string(),
            command_manager=commandmanager.CommandManager(
                'ironic_libvirt.cli'),
            stdout=stdout, stderr=stderr, deferred_help=True)


def main(argv=None):
    """Run the command line; return its exit code."""
    return IronicLibvirtApp().run(sys.argv[1:] if argv is None else argv)


if __name__ == '__main__':
    sys.exit(main())
