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

"""Running the ``ironic-libvirt`` command line in-process.

``test:///default`` keeps its state while any connection to it is open:
each test holds one (``self.conn``) and sees what the command did.
"""

import contextlib
import gc
import io
import json
import logging
import time

import libvirt

from ironic_libvirt.cmd import main
from ironic_libvirt.virt import connection
from ironic_libvirt.virt import fleet
from tests.unit import base

URI = 'test:///default'
# The domains of a fresh test:///default.
PRISTINE_DOMAINS = ['test']


def wait_for_pristine_hypervisor(timeout=60):
    """Wait until a new connection gets a fresh test:///default.

    Its state lives while any connection to it is open. A connection whose
    event callbacks were deregistered is released only when libvirt's event
    loop thread next runs, which a busy machine delays; and a domain handle
    (which holds its connection) kept by an earlier test's exception and
    traceback, in a reference cycle, lives until Python's cyclic garbage
    collector runs. Either way an earlier test's domains would still be
    there.
    """
    deadline = time.monotonic() + timeout
    while True:
        gc.collect()
        conn = libvirt.open(URI)
        try:
            names = sorted(d.name() for d in conn.listAllDomains())
        finally:
            conn.close()
        if names == PRISTINE_DOMAINS:
            return
        if time.monotonic() > deadline:
            raise AssertionError('%s still has the domains %s of an earlier '
                                 'test after %s s' % (URI, names, timeout))
        time.sleep(0.05)


class CLITestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        wait_for_pristine_hypervisor()
        self.conn = libvirt.open(URI)
        self.addCleanup(self.conn.close)
        self.stdout = io.StringIO()
        self.stderr = io.StringIO()
        # Ironic's test base configures logging, which disables the loggers
        # that existed before, cliff's among them: the command line prints
        # its errors through it.
        logger = logging.getLogger(main.IronicLibvirtApp.NAME)
        self.addCleanup(setattr, logger, 'disabled', logger.disabled)
        logger.disabled = False

    def run_cli(self, *args):
        # cliff adds a handler on the root logger at each run: remove it,
        # so that no later test writes into this test's stderr.
        root = logging.getLogger()
        handlers = list(root.handlers)
        try:
            return main.IronicLibvirtApp(stdout=self.stdout,
                                         stderr=self.stderr).run(list(args))
        finally:
            for handler in set(root.handlers) - set(handlers):
                root.removeHandler(handler)

    def create(self, names, **kwargs):
        """Create domains with the core, as create-fleet does."""
        params = connection.ConnectionParams(uri=URI)
        with contextlib.closing(
                connection.ConnectionCache(size=1).get(params)) as conn:
            return fleet.create(conn, names, 'default-pool', '/p', **kwargs)

    def json_out(self, *args):
        self.assertEqual(0, self.run_cli(*args, '-f', 'json'),
                         self.stderr.getvalue())
        return json.loads(self.stdout.getvalue())

    def usage_error(self, *args):
        """Run the command; assert a usage error; return argparse's text.

        argparse writes to ``sys.stderr`` and exits 2, which cliff lets
        through.
        """
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            exc = self.assertRaises(SystemExit, self.run_cli, *args)
        self.assertEqual(2, exc.code)
        return stderr.getvalue()

    def failure(self, *args):
        """Run the command; assert exit code 1; return its one-line error."""
        self.assertEqual(1, self.run_cli(*args))
        lines = self.stderr.getvalue().splitlines()
        self.assertEqual(1, len(lines), lines)
        self.assertNotIn('Traceback', lines[0])
        return lines[0]
