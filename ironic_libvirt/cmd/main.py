"""The ``ironic-libvirt`` command line (cliff).

Subcommands:

* ``domains``: a hypervisor's domains with state, MACs, boot device and
  firmware;
* ``create-fleet``: many domains at once, from scratch or cloned;
* ``enroll-file``: a file that ``baremetal create`` enrolls;
* ``check``: a node's driver_info, step by step, with the fix of a failure;
* ``console``: the serial console of a domain on stdin/stdout (what the
  ``libvirt-socat`` console interface runs under socat).

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
