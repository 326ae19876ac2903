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

"""The ramdisk builder's parts that need no build: recipe, cache, checks.

The real build and boot are in tests/functional/test_ramdisk.py. Here the
conditions a build refuses are provoked for real where this machine can:
a user other than root (the tests drop to ``nobody`` when run as root), a
PATH without the tool, a closed port on loopback for an unreachable
index, apt's real lists for the kernel package.
"""

import dataclasses
import hashlib
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys

import fixtures
import testtools

from ironic_libvirt.lab import ramdisk
from tests.harness import web

REPO = pathlib.Path(__file__).resolve().parents[2]
NOBODY = 65534
RECIPE = ramdisk.Recipe(ipa_version='13.0.0',
                        kernel_package='linux-image-6.1.0-1-amd64',
                        kernel_version='6.1.1-1')


def closed_port():
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class RecipeTestCase(testtools.TestCase):

    def test_key_is_stable_and_short(self):
        same = ramdisk.Recipe(ipa_version='13.0.0',
                              kernel_package='linux-image-6.1.0-1-amd64',
                              kernel_version='6.1.1-1')
        self.assertEqual(RECIPE.key(), same.key())
        self.assertRegex(RECIPE.key(), r'^[0-9a-f]{16}$')

    def test_every_ingredient_changes_the_key(self):
        changes = {'ipa_version': '12.0.0', 'kernel_package': 'linux-x',
                   'kernel_version': '6.1.2-1', 'compression': 'zstd',
                   'suite': 'trixie', 'packages': RECIPE.packages + ('vim',),
                   'modules': RECIPE.modules[1:],
                   'init': RECIPE.init.replace('sleep 5', 'sleep 6'),
                   'poweroff': RECIPE.poweroff + '\n', 'builder': 'x'}
        self.assertEqual(
            {f.name for f in dataclasses.fields(ramdisk.Recipe)},
            set(changes))
        keys = {dataclasses.replace(RECIPE, **{name: value}).key()
                for name, value in changes.items()}
        self.assertEqual(len(changes), len(keys))
        self.assertNotIn(RECIPE.key(), keys)

    def test_builder_digest_is_this_source(self):
        source = pathlib.Path(ramdisk.__file__).read_bytes()
        self.assertEqual(hashlib.sha256(source).hexdigest(), RECIPE.builder)

    def test_make_recipe_names_apt_kernel(self):
        # apt's real lists on this Debian machine, as the CLI reads them.
        recipe = ramdisk.make_recipe()
        self.assertRegex(recipe.kernel_package,
                         r'^linux-image-[0-9.]+-[0-9]+-amd64$')
        self.assertTrue(recipe.kernel_version)
        self.assertEqual(ramdisk.DEFAULT_IPA_VERSION, recipe.ipa_version)
        self.assertEqual('gzip', recipe.compression)

    def test_make_recipe_refuses(self):
        exc = self.assertRaises(ramdisk.BuildError, ramdisk.make_recipe,
                                compression='lzma')
        self.assertEqual('unknown compression lzma: use one of gzip, zstd',
                         str(exc))
        exc = self.assertRaises(ramdisk.BuildError, ramdisk.make_recipe,
                                ipa_version='13.0.0; rm -rf /')
        self.assertIn('is not a release number of ironic-python-agent',
                      str(exc))
        for good in ('13.0.0', '9.14.1', '14.0.0rc1'):
            self.assertEqual(good, ramdisk.check_ipa_version(good))


class CacheTestCase(testtools.TestCase):
    """A cache hit needs no tool and no root; a miss builds."""

    def setUp(self):
        super().setUp()
        self.tmp = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        self.cache = self.tmp / 'cache'
        self.out = self.tmp / 'out'
        self.lines = []
        # Nothing on PATH: a hit must not run anything, a miss stops at the
        # first tool it checks.
        empty = self.tmp / 'bin'
        empty.mkdir()
        self.useFixture(fixtures.EnvironmentVariable('PATH', str(empty)))

    def fill_cache(self, recipe):
        entry = self.cache / recipe.key()
        entry.mkdir(parents=True)
        (entry / 'ipa.kernel').write_bytes(b'kernel' * 100)
        (entry / 'ipa.initramfs').write_bytes(b'initramfs' * 100)
        (entry / 'recipe.json').write_text(json.dumps({}))

    def build(self, recipe):
        return ramdisk.build_recipe(recipe, self.out, cache_dir=self.cache,
                                    progress=self.lines.append)

    def test_hit_copies_the_cached_files(self):
        self.fill_cache(RECIPE)
        (self.out).mkdir()
        (self.out / 'ipa.kernel').write_bytes(b'stale')
        kernel, initramfs = self.build(RECIPE)
        self.assertEqual((self.out / 'ipa.kernel', self.out / 'ipa.initramfs'),
                         (kernel, initramfs))
        self.assertEqual(b'kernel' * 100, kernel.read_bytes())
        self.assertEqual(b'initramfs' * 100, initramfs.read_bytes())
        self.assertEqual(1, len(self.lines))
        self.assertRegex(self.lines[0], r'^\[ +[0-9.]+s\] reusing the cached '
                         r'ramdisk .*/%s ' % RECIPE.key())
        self.assertEqual(['ipa.initramfs', 'ipa.kernel'],
                         sorted(os.listdir(self.out)))

    def test_miss_builds(self):
        self.fill_cache(dataclasses.replace(RECIPE, ipa_version='12.0.0'))
        exc = self.assertRaises(ramdisk.BuildError, self.build, RECIPE)
        self.assertEqual('mmdebstrap not found: apt-get install mmdebstrap',
                         str(exc))
        self.assertIn('building recipe %s: IPA 13.0.0, kernel '
                      'linux-image-6.1.0-1-amd64 6.1.1-1, gzip'
                      % RECIPE.key(), self.lines[0])
        self.assertFalse((self.cache / RECIPE.key()).exists())
        self.assertFalse((self.out / 'ipa.kernel').exists())

    def test_unwritable_cache(self):
        blocker = self.tmp / 'file'
        blocker.write_text('')
        exc = self.assertRaises(ramdisk.BuildError, ramdisk.build_recipe,
                                RECIPE, self.out, cache_dir=blocker / 'c')
        self.assertEqual('cannot write to %s/c: Not a directory; run as '
                         'root or choose another --cache-dir / --output'
                         % blocker, str(exc))

    def test_cache_dir_from_environment(self):
        self.useFixture(fixtures.EnvironmentVariable(ramdisk.CACHE_DIR_ENV,
                                                     str(self.cache)))
        self.assertEqual(self.cache, ramdisk.default_cache_dir())
        self.useFixture(fixtures.EnvironmentVariable(ramdisk.CACHE_DIR_ENV))
        self.assertEqual(pathlib.Path('/var/cache/ironic-libvirt/ramdisk'),
                         ramdisk.default_cache_dir())


class StepFailureTestCase(testtools.TestCase):

    def test_failing_command_named_with_its_last_line_and_log(self):
        tmp = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        build = ramdisk._Build(RECIPE, tmp / RECIPE.key(),
                               ramdisk._Clock(lambda line: None))
        build.work.mkdir()
        exc = self.assertRaises(
            ramdisk.BuildError, build.execute, 'sh', '-c',
            'echo first; echo "E: the reason" >&2; echo; exit 3')
        self.assertEqual('sh failed (exit code 3): E: the reason; the full '
                         'log is %s' % build.log, str(exc))
        self.assertIn('first\nE: the reason\n', build.log.read_text())


class NetworkCheckTestCase(testtools.TestCase):
    """Real HTTP on loopback: a closed port, a small package index."""

    def test_archive_unreachable(self):
        url = 'http://127.0.0.1:%d/debian' % closed_port()
        exc = self.assertRaises(ramdisk.BuildError, ramdisk.check_archive,
                                [url])
        self.assertEqual(
            'cannot reach the Debian archive at %s/dists/bookworm/Release '
            '([Errno 111] Connection refused): the build downloads packages '
            'from it; check the network and the apt sources' % url,
            str(exc))

    def test_no_apt_sources(self):
        exc = self.assertRaises(ramdisk.BuildError, ramdisk.check_archive,
                                [])
        self.assertIn('no apt sources in /etc/apt/sources.list or '
                      '/etc/apt/sources.list.d: add Debian bookworm',
                      str(exc))

    def test_pypi_unreachable(self):
        index = 'http://127.0.0.1:%d/simple' % closed_port()
        exc = self.assertRaises(ramdisk.BuildError, ramdisk.check_pypi,
                                '13.0.0', index)
        self.assertEqual(
            'cannot reach the Python package index at %s/ironic-python-agent/'
            ' ([Errno 111] Connection refused): the build installs '
            'ironic-python-agent from it; check the network (or '
            'PIP_INDEX_URL)' % index, str(exc))

    def test_pypi_release_present_or_not(self):
        root = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        page = root / 'simple' / 'ironic-python-agent'
        page.mkdir(parents=True)
        (page / 'index.html').write_text(
            '<a href="x">ironic_python_agent-13.0.0-py3-none-any.whl</a>\n'
            '<a href="y">ironic-python-agent-12.0.0.tar.gz</a>\n')
        with web.serving(root) as url:
            ramdisk.check_pypi('13.0.0', url + '/simple')
            ramdisk.check_pypi('12.0.0', url + '/simple')
            exc = self.assertRaises(ramdisk.BuildError, ramdisk.check_pypi,
                                    '13.0', url + '/simple')
        self.assertEqual('ironic-python-agent 13.0 is not on %s/simple: '
                         'choose a released version with --ipa-version'
                         % url, str(exc))

    def test_archive_urls_of_both_formats(self):
        tmp = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        (tmp / 'a.list').write_text(
            '# deb http://commented.example/debian bookworm main\n'
            'deb [arch=amd64] http://one.example/debian bookworm main\n'
            'deb http://two.example/debian bookworm main # tail\n'
            'deb-src http://src.example/debian bookworm main\n')
        (tmp / 'b.sources').write_text(
            'Types: deb\nURIs: http://three.example/debian\n'
            'Suites: bookworm\n')
        self.assertEqual(['http://one.example/debian',
                          'http://two.example/debian',
                          'http://three.example/debian'],
                         ramdisk.archive_urls([tmp / 'a.list',
                                               tmp / 'b.sources']))


class ModuleClosureTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        (self.dir / 'modules.dep').write_text(
            'kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko '
            'kernel/lib/crc16.ko\n'
            'kernel/fs/jbd2/jbd2.ko:\n'
            'kernel/lib/crc16.ko:\n'
            'kernel/crypto/crc32c_generic.ko:\n'
            'kernel/drivers/net/virtio_net.ko: kernel/net/core/failover.ko\n'
            'kernel/net/core/failover.ko:\n')
        (self.dir / 'modules.builtin').write_text(
            'kernel/fs/efivarfs/efivarfs.ko\n')
        (self.dir / 'modules.softdep').write_text(
            '# comment\nsoftdep ext4 pre: crc32c-generic missing_soft\n')

    def test_dependencies_first_builtins_skipped(self):
        self.assertEqual(
            ['kernel/fs/jbd2/jbd2.ko', 'kernel/lib/crc16.ko',
             'kernel/crypto/crc32c_generic.ko', 'kernel/fs/ext4/ext4.ko',
             'kernel/net/core/failover.ko',
             'kernel/drivers/net/virtio_net.ko'],
            ramdisk.module_closure(self.dir, ['ext4', 'efivarfs',
                                              'virtio-net', 'jbd2']))

    def test_unknown_module(self):
        exc = self.assertRaises(ramdisk.BuildError, ramdisk.module_closure,
                                self.dir, ['ext4', 'nosuch'])
        self.assertEqual('kernel module nosuch is not in %s: update MODULES '
                         'of the builder' % self.dir, str(exc))


class ScriptsTestCase(testtools.TestCase):

    def test_init_and_poweroff_pass_shellcheck(self):
        if shutil.which('shellcheck') is None:
            self.fail('shellcheck is missing: install the packages of '
                      'bindep.txt')
        tmp = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        for name, text in (('init', ramdisk.INIT),
                           ('poweroff', ramdisk.POWEROFF)):
            (tmp / name).write_text(text)
            result = subprocess.run(['shellcheck', '-s', 'sh', tmp / name],
                                    capture_output=True, text=True)
            self.assertEqual(0, result.returncode, result.stdout)


class CommandLineTestCase(testtools.TestCase):
    """``ironic-libvirt build-ramdisk`` as a user runs it, in a process."""

    def setUp(self):
        super().setUp()
        self.tmp = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        self.tmp.chmod(0o777)  # for the run as nobody

    def run_cli(self, *args, path=None, user=None):
        cmd = [sys.executable, '-m', 'ironic_libvirt.cmd.main',
               'build-ramdisk'] + list(args)
        if user is not None:
            cmd = ['setpriv', '--reuid=%d' % user, '--regid=%d' % user,
                   '--clear-groups', '--'] + cmd
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE='1')
        if path is not None:
            env['PATH'] = path
        return subprocess.run(cmd, capture_output=True, text=True, env=env,
                              cwd=REPO)

    def assert_error(self, result, message):
        self.assertEqual(1, result.returncode, result.stderr)
        self.assertNotIn('Traceback', result.stderr)
        self.assertEqual('build-ramdisk: ' + message,
                         result.stderr.splitlines()[-1])
        self.assertEqual('', result.stdout)

    def test_not_root(self):
        # As root, the command runs as nobody: a real unprivileged user,
        # with a user's PATH (no sbin directories, where chroot is).
        user = NOBODY if os.geteuid() == 0 else None
        result = self.run_cli('--output', str(self.tmp / 'out'),
                              '--cache-dir', str(self.tmp / 'cache'),
                              path='/usr/local/bin:/usr/bin:/bin', user=user)
        self.assert_error(result, 'building a ramdisk needs root '
                          '(mmdebstrap, chroot and mounts): run it as root, '
                          'e.g. with sudo')

    def test_missing_mmdebstrap(self):
        # A PATH with apt-cache (to name the kernel) but no mmdebstrap.
        bin_dir = self.tmp / 'bin'
        bin_dir.mkdir()
        (bin_dir / 'apt-cache').symlink_to(shutil.which('apt-cache'))
        result = self.run_cli('--output', str(self.tmp / 'out'),
                              '--cache-dir', str(self.tmp / 'cache'),
                              path=str(bin_dir))
        self.assert_error(result, 'mmdebstrap not found: apt-get install '
                          'mmdebstrap')

    def test_usage_errors(self):
        for args, text in (
                ((), 'the following arguments are required: --output'),
                (('--output', 'o', '--compression', 'xz'),
                 "argument --compression: invalid choice: 'xz'"),
                (('--output', 'o', '--ipa-version', 'latest'),
                 "argument --ipa-version: 'latest' is not a release "
                 "number")):
            result = self.run_cli(*args)
            self.assertEqual(2, result.returncode, result.stderr)
            self.assertIn(text, result.stderr)
            self.assertFalse((REPO / 'o').exists())
