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

"""``ironic-libvirt build-ramdisk``: an IPA deploy ramdisk from Debian+PyPI.

A thin command over :mod:`ironic_libvirt.lab.ramdisk`.
"""

import argparse

from cliff import command

from ironic_libvirt.lab import ramdisk


def _ipa_version(value):
    try:
        return ramdisk.check_ipa_version(value)
    except ramdisk.BuildError as exc:
        raise argparse.ArgumentTypeError(str(exc))


class BuildRamdisk(command.Command):
    """Build an ironic-python-agent deploy kernel and ramdisk (as root)."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--output', required=True, metavar='DIR',
                            help='directory that receives ipa.kernel and '
                                 'ipa.initramfs')
        parser.add_argument('--ipa-version', metavar='VERSION',
                            default=ramdisk.DEFAULT_IPA_VERSION,
                            type=_ipa_version,
                            help='ironic-python-agent release from PyPI '
                                 '(default: %(default)s)')
        parser.add_argument('--cache-dir', metavar='DIR',
                            default=ramdisk.default_cache_dir(),
                            help='where built ramdisks are kept, one per '
                                 'recipe (default: $%s or %s; now '
                                 '%%(default)s)' % (
                                     ramdisk.CACHE_DIR_ENV,
                                     ramdisk.DEFAULT_CACHE_DIR))
        parser.add_argument('--compression',
                            choices=sorted(ramdisk.COMPRESSIONS),
                            default=ramdisk.DEFAULT_COMPRESSION,
                            help='of the initramfs (default: %(default)s; '
                                 'zstd needs [conductor] '
                                 'disable_zstandard_decompression = True '
                                 'for virtual media)')
        return parser

    def take_action(self, parsed_args):
        def progress(line):
            self.app.stderr.write(line + '\n')
            self.app.stderr.flush()

        try:
            paths = ramdisk.build(
                parsed_args.output, ipa_version=parsed_args.ipa_version,
                cache_dir=parsed_args.cache_dir, progress=progress,
                compression=parsed_args.compression)
        except ramdisk.BuildError as exc:
            self.app.stderr.write('build-ramdisk: %s\n' % exc)
            return 1
        for path in paths:
            self.app.stdout.write('%s\n' % path)
        return 0
